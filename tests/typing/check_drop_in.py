"""Type-checked, never run: ``mypy --strict`` (in .ci/run) proves that a program typed
against the stdlib ``socket`` module keeps its types when it imports asocket instead."""

from __future__ import annotations

import socket as stdlib
from typing import assert_type

import asocket
import asocket.sync as socket


def sync_face() -> None:
    family: stdlib.AddressFamily = socket.AF_INET
    kind: stdlib.SocketKind = socket.SOCK_DGRAM
    assert_type(socket.inet_aton("127.0.0.1"), bytes)
    assert_type(socket.timeout, type[TimeoutError])
    assert_type(socket.gaierror, type[stdlib.gaierror])
    with socket.socket(family, kind) as sock:
        assert_type(sock, asocket.sync.SyncSocket)
        sock.bind(("127.0.0.1", 0))
        name: tuple[str, int] = sock.getsockname()
        del name
    conn = socket.create_connection(("127.0.0.1", 1), timeout=1.0, happy_eyeballs_delay=None)
    assert_type(conn, asocket.sync.SyncSocket)


async def async_face() -> None:
    family: stdlib.AddressFamily = asocket.AF_INET6
    del family
    assert_type(asocket.SHUT_RDWR, int)
    sock = await asocket.create_connection(("127.0.0.1", 1), timeout=1.0)
    assert_type(sock, asocket.AsyncSocket)
    assert_type(await sock.recv(1), bytes)
