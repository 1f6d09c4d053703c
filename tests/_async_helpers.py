"""Helpers the async-face tests share: loopback pairs, full buffers, bounds."""

from __future__ import annotations

import asyncio
import socket
import time

import asocket

WAIT = 5.0  # bound on every wait that should succeed
CHUNK = 65536


async def listener(family: int = asocket.AF_INET, host: str | None = None) -> asocket.socket:
    """A listening TCP socket on loopback (``::1`` for AF_INET6 unless ``host`` is given)."""
    if host is None:
        host = "::1" if family == asocket.AF_INET6 else "127.0.0.1"
    lst = asocket.socket(family, asocket.SOCK_STREAM)
    try:
        await lst.bind((host, 0))
        lst.listen()
    except BaseException:
        lst.close()
        raise
    return lst


async def tcp_pair(
    family: int = asocket.AF_INET, host: str | None = None
) -> tuple[asocket.socket, asocket.socket]:
    """A connected (client, server) TCP pair on loopback."""
    with await listener(family, host) as lst:
        cli = asocket.socket(family, asocket.SOCK_STREAM)
        try:
            await asyncio.wait_for(cli.connect(lst.getsockname()), WAIT)
            srv, _ = await asyncio.wait_for(lst.accept(), WAIT)
        except BaseException:
            cli.close()
            raise
    return cli, srv


def small_buffers(a: asocket.socket, b: asocket.socket) -> None:
    a.setsockopt(asocket.SOL_SOCKET, asocket.SO_SNDBUF, 4096)
    b.setsockopt(asocket.SOL_SOCKET, asocket.SO_RCVBUF, 4096)


async def fill(sock: asocket.socket) -> int:
    """Send until not even one more byte fits; return the count. Restores the mode."""
    saved = sock.gettimeout()
    sock.settimeout(0.0)
    total = 0
    try:
        for size in (CHUNK, 4096, 256, 1):
            for _ in range(100_000):
                try:
                    total += await sock.send(b"f" * size)
                except BlockingIOError:
                    break
    finally:
        sock.settimeout(saved)
    return total


async def drain(sock: asocket.socket, idle: float = 0.2) -> int:
    """Read until nothing arrives for ``idle`` seconds (or EOF); return the count."""
    saved = sock.gettimeout()
    sock.settimeout(idle)
    total = 0
    try:
        while True:
            try:
                data = await asyncio.wait_for(sock.recv(CHUNK), WAIT)
            except TimeoutError:
                return total
            if not data:
                return total
            total += len(data)
    finally:
        sock.settimeout(saved)


def pending_connect_target() -> tuple[socket.socket, list[socket.socket]]:
    """A loopback listener whose accept queue is full: a further connect stays pending."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(lst.getsockname())
        fillers.append(s)
    time.sleep(0.05)
    return lst, fillers
