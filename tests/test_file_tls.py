"""Buffered files on TLS sockets (``asocket.SSLSocket.makefile``), on every backend (the
loop matrix and trio: see ``conftest.py``).

The peer is a thread running the stdlib's blocking ``ssl`` server on the other
end of a loopback TCP connection.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from _async_helpers import Tasks, bounded, cancelled

import asocket

trustme = pytest.importorskip("trustme")
pytestmark = pytest.mark.anyio
WAIT = 10.0


@pytest.fixture(scope="module")
def contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


class Peer:
    """A blocking TLS server thread on one connection: runs ``script(tls_sock)``."""

    def __init__(self, ctx: ssl.SSLContext, script: Callable[[ssl.SSLSocket], None]) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)  # accept() inherits it
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.address = self.listener.getsockname()
        self.ctx = ctx
        self.script = script
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.listener.settimeout(WAIT)
            conn, _ = self.listener.accept()
            conn.settimeout(WAIT)
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                self.script(tls)
        except BaseException as exc:  # reported by join()
            self.error = exc
        finally:
            self.listener.close()

    def join(self) -> None:
        self.thread.join(WAIT)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


@pytest.fixture
async def tls_client(
    contexts: tuple[ssl.SSLContext, ssl.SSLContext], anyio_backend: Any
) -> AsyncIterator[Callable[[Callable[[ssl.SSLSocket], None]], Any]]:
    opened: list[Any] = []
    peers: list[Peer] = []

    async def connect(script: Callable[[ssl.SSLSocket], None]) -> Any:
        peer = Peer(contexts[0], script)
        peers.append(peer)
        sock = await asocket.create_connection(peer.address, timeout=WAIT)
        try:
            tls = await asocket.wrap_socket(sock, contexts[1], server_hostname="localhost")
        except BaseException:
            sock.close()
            raise
        opened.append(tls)
        return tls

    try:
        yield connect
    finally:
        for tls in opened:
            tls.close()
        for peer in peers:
            peer.join()


def lines_then_frame(tls: ssl.SSLSocket) -> None:
    payload = os.urandom(100_000)
    tls.sendall(b"hello\r\nworld\n" + len(payload).to_bytes(4, "big") + payload)
    assert tls.recv(100) == b"thanks\n"
    tls.sendall(b"rest")


async def test_tls_file_lines_frames_and_write(tls_client: Any) -> None:
    tls = await tls_client(lines_then_frame)
    async with tls.makefile("rwb") as f:
        assert await f.readuntil(b"\r\n") == b"hello\r\n"
        assert await f.readline() == b"world\n"
        size = int.from_bytes(await f.readexactly(4), "big")
        assert len(await f.readexactly(size)) == 100_000
        await f.write(b"thanks\n")
        await f.flush()
        assert await f.read(4) == b"rest"


def slow_frame(tls: ssl.SSLSocket) -> None:
    tls.sendall(b"\x00\x00\x00\x08abcd")
    assert tls.recv(100) == b"go"
    tls.sendall(b"efgh")
    tls.sendall(b"late\n")
    assert tls.recv(100) == b""  # the client closes


async def test_tls_file_timeout_cancel_nonblocking_keep_bytes(tls_client: Any) -> None:
    tls = await tls_client(slow_frame)
    f = tls.makefile("rb")
    try:
        size = int.from_bytes(await f.readexactly(4), "big")
        tls.settimeout(0.05)
        with pytest.raises(TimeoutError):
            await f.readexactly(size)
        tls.settimeout(0.0)
        with pytest.raises(BlockingIOError):  # not SSLWantReadError: the file's contract
            await f.readexactly(size)
        tls.settimeout(WAIT)
        async with Tasks() as tasks:
            await cancelled(await tasks.start(f.readexactly(size)))
        await bounded(tls.sendall(b"go"), WAIT)
        assert await bounded(f.readexactly(size), WAIT) == b"abcdefgh"
        assert await bounded(f.readline(), WAIT) == b"late\n"
    finally:
        f.close()


def refcount_script(tls: ssl.SSLSocket) -> None:
    tls.sendall(b"one\n")
    assert tls.recv(100) == b""


async def test_tls_file_keeps_the_socket_open(tls_client: Any) -> None:
    tls = await tls_client(refcount_script)
    f = tls.makefile("rb")
    tls.close()
    assert tls.fileno() != -1
    assert await bounded(f.readline(), WAIT) == b"one\n"
    f.close()
    assert tls.fileno() == -1


def slow_reader(tls: ssl.SSLSocket) -> None:
    time.sleep(0.3)  # the client's first flush times out meanwhile
    got = bytearray()
    while len(got) < 3_000_000:
        chunk = tls.recv(1 << 20)
        assert chunk
        got += chunk
    assert bytes(got) == bytes(range(250)) * 12_000  # nothing lost, nothing twice
    tls.sendall(b"ok")


async def test_tls_flush_timeout_then_resume(tls_client: Any) -> None:
    tls = await tls_client(slow_reader)
    tls.setsockopt(asocket.SOL_SOCKET, asocket.SO_SNDBUF, 32768)
    w = tls.makefile("wb")
    try:
        tls.settimeout(0.05)
        with pytest.raises(TimeoutError):  # 3 MB, more than the buffering: sent at once
            await w.write(bytes(range(250)) * 12_000)  # the bytes are kept all the same
        tls.settimeout(WAIT)
        await bounded(w.flush(), WAIT)
        assert await bounded(tls.recv(10), WAIT) == b"ok"
    finally:
        w.close()


def late_bulk(tls: ssl.SSLSocket) -> None:
    assert tls.recv(100) == b"go"
    time.sleep(0.05)  # the client's read(n) starts with nothing received
    tls.sendall(bytes(range(256)) * 256)
    assert tls.recv(100) == b""  # the client closes


async def test_tls_file_big_read_waits_for_its_bytes(tls_client: Any) -> None:
    """``read(n)`` of at least 16 KiB with nothing buffered (the path that takes
    plain sockets' bytes straight from the raw socket) gets its bytes on TLS."""
    tls = await tls_client(late_bulk)
    async with tls.makefile("rwb") as f:
        await f.write(b"go")
        await f.flush()
        assert await f.read(65536) == bytes(range(256)) * 256
