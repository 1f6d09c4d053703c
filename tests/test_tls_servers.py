"""create_connection(ssl=...) and serve_tcp(ssl=...) on both faces; the async face on
every backend (the loop matrix and trio: see ``conftest.py``).

A failed, garbage or timed-out handshake is logged once with the peer's address
(no traceback), never reaches the handler, never stops the server, and counts
against max_connections while it runs.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import pytest
from _async_helpers import Tasks, bounded
from _tls_helpers import (
    HOST,
    WAIT,
    Certs,
    Peer,
    certs_fixture,  # noqa: F401  (fixture "certs")
    echo,
    requires_tls,
    tls_server,
)

import asocket
import asocket.sync

requires_tls()
T = TypeVar("T")
# The timeouts a handshake with a silent server runs into: the socket's, or the handshake's.
SILENT_CASES: list[dict[str, Any]] = [
    {"timeout": 0.2},
    {"timeout": WAIT, "ssl_handshake_timeout": 0.2},
]


# -- create_connection -----------------------------------------------------------------


@pytest.mark.anyio
async def test_create_connection_ssl(certs: Certs) -> None:
    """ssl=ctx: handshake done; server_hostname defaults to the host of the address."""
    for host in (HOST, "localhost"):
        with Peer(tls_server(certs.server_ctx(), echo)) as peer:
            s = await asocket.create_connection(
                (host, peer.address[1]), timeout=WAIT, ssl=certs.client_ctx()
            )
            with s:
                assert isinstance(s, asocket.SSLSocket)
                assert s.server_hostname == host
                assert s.version() is not None
                await s.sendall(b"hi")
                assert await s.recv(2) == b"hi"
            peer.join()


def test_create_connection_ssl_sync(certs: Certs) -> None:
    with Peer(tls_server(certs.server_ctx(), echo)) as peer:
        with asocket.sync.create_connection(
            peer.address, timeout=WAIT, ssl=certs.client_ctx()
        ) as s:
            assert isinstance(s, asocket.sync.SSLSocket)
            assert s.server_hostname == HOST
            s.sendall(b"hi")
            assert s.recv(2) == b"hi"
        peer.join()


@pytest.mark.anyio
async def test_create_connection_ssl_hostname_and_errors(certs: Certs) -> None:
    """server_hostname overrides; a bad certificate raises; a silent server times out."""
    with Peer(tls_server(certs.server_ctx(), echo)) as peer:
        with pytest.raises(ssl.SSLCertVerificationError):
            await asocket.create_connection(
                peer.address, timeout=WAIT, ssl=certs.client_ctx(), server_hostname="wrong.test"
            )
        peer.join(check=False)

    def silent(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.recv(1)

    for kwargs in SILENT_CASES:
        with Peer(silent) as peer:
            with pytest.raises(TimeoutError):
                await asocket.create_connection(peer.address, ssl=certs.client_ctx(), **kwargs)
            peer.join(check=False)


def test_create_connection_ssl_timeout_sync(certs: Certs) -> None:
    def silent(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.recv(1)

    for kwargs in SILENT_CASES:
        with Peer(silent) as peer:
            with pytest.raises(TimeoutError):
                asocket.sync.create_connection(peer.address, ssl=certs.client_ctx(), **kwargs)
            peer.join(check=False)


# -- serve_tcp -------------------------------------------------------------------------


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a worker thread (bounded: ``fn``'s sockets have timeouts)."""
    return await bounded(anyio.to_thread.run_sync(fn, *args), WAIT)


def _client(port: int, certs: Certs, payload: bytes) -> bytes:
    raw = socket.create_connection((HOST, port), timeout=WAIT)
    with certs.client_ctx().wrap_socket(raw, server_hostname="localhost") as s:
        s.sendall(payload)
        out = b""
        while True:
            data = s.recv(100)
            if not data:
                return out
            out += data


def _garbage(port: int) -> None:
    with socket.create_connection((HOST, port), timeout=WAIT) as c:
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        try:
            c.recv(100)  # the server's alert or its close
        except ConnectionResetError:
            pass


@pytest.mark.anyio
async def test_serve_tcp_ssl(certs: Certs, caplog: pytest.LogCaptureFixture) -> None:
    """The handler gets a TLS socket; garbage and silence are logged, never handled."""
    handled: list[Any] = []

    async def handler(sock: Any, addr: Any) -> None:
        handled.append((type(sock), sock.version()))
        data = await sock.recv(100)
        await sock.sendall(b"tls: " + data)

    with caplog.at_level(logging.WARNING, logger="asocket"):
        server = await asocket.serve_tcp(
            handler, HOST, 0, ssl=certs.server_ctx(), ssl_handshake_timeout=0.3
        )
        async with server:
            port = server.sockets[0].getsockname()[1]
            assert await in_thread(_client, port, certs, b"one") == b"tls: one"
            await in_thread(_garbage, port)
            silent = socket.create_connection((HOST, port), timeout=WAIT)
            with silent:
                assert await in_thread(silent.recv, 1) == b""  # timed out, closed
            assert await in_thread(_client, port, certs, b"two") == b"tls: two"
    assert handled == [(asocket.SSLSocket, "TLSv1.3")] * 2
    records = [r for r in caplog.records if r.name.startswith("asocket")]
    assert len(records) == 2, [r.getMessage() for r in records]
    for r in records:
        assert "127.0.0.1" in r.getMessage()
        assert r.exc_info is None or r.exc_info[0] is None  # no traceback


def test_serve_tcp_ssl_sync(certs: Certs, caplog: pytest.LogCaptureFixture) -> None:
    handled: list[Any] = []

    def handler(sock: Any, addr: Any) -> None:
        handled.append(type(sock))
        sock.sendall(b"tls: " + sock.recv(100))

    with (
        caplog.at_level(logging.WARNING, logger="asocket"),
        asocket.sync.serve_tcp(
            handler, HOST, 0, ssl=certs.server_ctx(), ssl_handshake_timeout=0.3
        ) as server,
    ):
        port = server.sockets[0].getsockname()[1]
        assert _client(port, certs, b"one") == b"tls: one"
        _garbage(port)
        with socket.create_connection((HOST, port), timeout=WAIT) as silent:
            assert silent.recv(1) == b""
        assert _client(port, certs, b"two") == b"tls: two"
    assert handled == [asocket.sync.SSLSocket] * 2
    records = [r for r in caplog.records if r.name.startswith("asocket")]
    assert len(records) == 2, [r.getMessage() for r in records]
    assert all("127.0.0.1" in r.getMessage() for r in records)


@pytest.mark.anyio
async def test_serve_tcp_ssl_handshakes_count_against_max_connections(certs: Certs) -> None:
    """With max_connections=1, a client stuck in its handshake holds the only slot."""

    async def handler(sock: Any, addr: Any) -> None:
        await sock.sendall(b"served")

    server = await asocket.serve_tcp(
        handler, HOST, 0, ssl=certs.server_ctx(), ssl_handshake_timeout=WAIT, max_connections=1
    )
    async with server, Tasks() as tasks:
        port = server.sockets[0].getsockname()[1]
        stuck = socket.create_connection((HOST, port), timeout=WAIT)
        try:
            await anyio.sleep(0.2)  # accepted, handshake waiting
            task = tasks.spawn(in_thread(_client, port, certs, b""))
            await anyio.sleep(0.3)
            assert not task.done()  # not accepted while the handshake holds the slot
        finally:
            stuck.close()
        assert await task.join(WAIT) == b"served"


def test_serve_tcp_ssl_handshakes_count_against_max_connections_sync(certs: Certs) -> None:
    def handler(sock: Any, addr: Any) -> None:
        sock.sendall(b"served")

    with asocket.sync.serve_tcp(
        handler, HOST, 0, ssl=certs.server_ctx(), ssl_handshake_timeout=WAIT, max_connections=1
    ) as server:
        port = server.sockets[0].getsockname()[1]
        stuck = socket.create_connection((HOST, port), timeout=WAIT)
        box: list[bytes] = []
        t = threading.Thread(target=lambda: box.append(_client(port, certs, b"")))
        try:
            time.sleep(0.2)
            t.start()
            time.sleep(0.3)
            assert not box
        finally:
            stuck.close()
        t.join(WAIT)
    assert box == [b"served"]


@pytest.mark.anyio
async def test_create_connection_ssl_arguments(certs: Certs) -> None:
    """server_hostname/ssl_handshake_timeout need ssl (asyncio's errors); ssl=True verifies."""
    with pytest.raises(ValueError, match="server_hostname is only meaningful with ssl"):
        await asocket.create_connection((HOST, 9), server_hostname="x")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="ssl_handshake_timeout is only meaningful with ssl"):
        await asocket.create_connection((HOST, 9), ssl_handshake_timeout=1.0)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="ssl_handshake_timeout should be a positive number"):
        await asocket.create_connection((HOST, 9), ssl=certs.client_ctx(), ssl_handshake_timeout=0)
    with Peer(tls_server(certs.server_ctx(), echo)) as peer:
        with pytest.raises(ssl.SSLCertVerificationError):  # the system's CAs: not ours
            await asocket.create_connection(peer.address, timeout=WAIT, ssl=True)
        peer.join(check=False)


def test_create_connection_ssl_arguments_sync(certs: Certs) -> None:
    with pytest.raises(ValueError, match="server_hostname is only meaningful with ssl"):
        asocket.sync.create_connection((HOST, 9), server_hostname="x")  # type: ignore[call-overload]
    with Peer(tls_server(certs.server_ctx(), echo)) as peer:
        with pytest.raises(ssl.SSLCertVerificationError):
            asocket.sync.create_connection(peer.address, timeout=WAIT, ssl=True)
        peer.join(check=False)


@pytest.mark.anyio
async def test_serve_tcp_ssl_close_clients_wakes_tls_handlers(certs: Certs) -> None:
    """close_clients()/shutdown reach a handler blocked in a TLS recv."""
    started = anyio.Event()
    ended: list[str] = []

    async def handler(sock: Any, addr: Any) -> None:
        started.set()
        try:
            await sock.recv(10)
        except BaseException as exc:
            ended.append(type(exc).__name__)
            raise

    server = await asocket.serve_tcp(handler, HOST, 0, ssl=certs.server_ctx(), grace_period=0.1)
    port = server.sockets[0].getsockname()[1]
    raw = socket.create_connection((HOST, port), timeout=WAIT)
    client = certs.client_ctx().wrap_socket(
        raw, server_hostname="localhost", do_handshake_on_connect=False
    )
    try:
        await in_thread(client.do_handshake)
        await bounded(started.wait(), WAIT)
        server.close()
        await bounded(server.wait_closed(), WAIT)
    finally:
        client.close()
    assert ended, "the handler was never stopped"
