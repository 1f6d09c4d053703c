"""serve_tcp / serve_unix on both faces: serving, caps, errors, shutdown, EMFILE."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import asocket
import asocket.sync


async def echo(sock: asocket.socket, addr: Any) -> None:
    while data := await sock.recv(4096):
        await sock.sendall(data)


def sync_echo(sock: asocket.sync.socket, addr: Any) -> None:
    while data := sock.recv(4096):
        sock.sendall(data)


async def roundtrip(port: int, payload: bytes, host: str = "127.0.0.1") -> bytes:
    sock = await asocket.create_connection((host, port), timeout=5)
    with sock:
        await sock.sendall(payload)
        return await sock.recv(4096)


@contextlib.contextmanager
def fd_table_full() -> Iterator[list[int]]:
    """Fill the descriptor table under a lowered RLIMIT_NOFILE; restore everything after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
    fillers: list[int] = []
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 1, hard))
    try:
        while True:
            try:
                fillers.append(os.dup(0))
            except OSError:
                break
        yield fillers
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- async face ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_serve_tcp_serves_concurrent_clients() -> None:
    async with await asocket.serve_tcp(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        replies = await asyncio.wait_for(
            asyncio.gather(*(roundtrip(port, b"client %d" % i) for i in range(5))), 10
        )
        assert replies == [b"client %d" % i for i in range(5)]


@pytest.mark.asyncio
async def test_serve_tcp_localhost_listens_on_each_address_same_port() -> None:
    async with await asocket.serve_tcp(echo, "localhost", 0) as server:
        assert len({s.getsockname()[1] for s in server.sockets}) == 1
        for sock in server.sockets:
            host, port = sock.getsockname()[:2]
            assert await asyncio.wait_for(roundtrip(port, b"x", host), 5) == b"x"


@pytest.mark.asyncio
async def test_handler_exception_is_logged_with_peer_and_server_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(sock: asocket.socket, addr: Any) -> None:
        if await sock.recv(10) == b"boom":
            raise ValueError("handler failed")
        await sock.sendall(b"fine")

    async with await asocket.serve_tcp(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        with caplog.at_level(logging.ERROR, logger="asocket"):
            assert await asyncio.wait_for(roundtrip(port, b"boom"), 5) == b""
        assert await asyncio.wait_for(roundtrip(port, b"ok"), 5) == b"fine"
    records = [r for r in caplog.records if "handler for" in r.getMessage()]
    assert records and "127.0.0.1" in records[0].getMessage()


@pytest.mark.asyncio
async def test_max_connections_stops_accepting_while_full() -> None:
    release = asyncio.Event()
    running: list[int] = []
    peak = 0

    async def handler(sock: asocket.socket, addr: Any) -> None:
        nonlocal peak
        running.append(1)
        peak = max(peak, len(running))
        await release.wait()
        await sock.sendall(b"done")
        running.pop()

    async with await asocket.serve_tcp(handler, "127.0.0.1", 0, max_connections=2) as server:
        port = server.sockets[0].getsockname()[1]
        clients = [
            await asocket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(4)
        ]
        await asyncio.sleep(0.2)
        assert server.active_connections == 2  # the other two wait in the backlog
        release.set()
        for client in clients:
            with client:
                assert await asyncio.wait_for(client.recv(10), 5) == b"done"
    assert peak == 2


@pytest.mark.asyncio
async def test_graceful_shutdown_cancels_handlers_after_grace() -> None:
    cancelled = asyncio.Event()

    async def handler(sock: asocket.socket, addr: Any) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server = await asocket.serve_tcp(handler, "127.0.0.1", 0, grace_period=0.1)
    port = server.sockets[0].getsockname()[1]
    client = await asocket.create_connection(("127.0.0.1", port), timeout=5)
    with client:
        await asyncio.sleep(0.1)
        assert server.active_connections == 1
        server.close()
        await asyncio.wait_for(server.wait_closed(), 5)
        assert cancelled.is_set()
        assert all(s.fileno() == -1 for s in server.sockets)
        assert await asyncio.wait_for(client.recv(10), 5) == b""  # the server closed it


@pytest.mark.asyncio
async def test_serve_unix(tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")
    async with await asocket.serve_unix(echo, path):
        sock = asocket.socket(asocket.AF_UNIX, asocket.SOCK_STREAM)
        with sock:
            await asyncio.wait_for(sock.connect(path), 5)
            await sock.sendall(b"unix")
            assert await asyncio.wait_for(sock.recv(10), 5) == b"unix"
    assert not os.path.exists(path)


@pytest.mark.asyncio
async def test_emfile_backs_off_keeps_listener_and_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with await asocket.serve_tcp(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        clients = [asocket.socket() for _ in range(3)]
        try:
            with caplog.at_level(logging.ERROR, logger="asocket"):
                with fd_table_full():
                    for client in clients:  # connect() needs no new descriptor
                        await asyncio.wait_for(client.connect(("127.0.0.1", port)), 5)
                    await asyncio.sleep(0.4)  # accept() fails with EMFILE meanwhile
                    assert server.sockets[0].fileno() != -1
                # Descriptors are back: the waiting connections are served.
                for client in clients:
                    await client.sendall(b"back")
                    assert await asyncio.wait_for(client.recv(10), 5) == b"back"
        finally:
            for client in clients:
                client.close()
        failures = [r for r in caplog.records if "accept() on" in r.getMessage()]
        assert len(failures) == 1  # logged once per episode, not per retry
        assert "out of resources" in failures[0].getMessage()
        assert await asyncio.wait_for(roundtrip(port, b"again"), 5) == b"again"


# -- sync face ----------------------------------------------------------------------


def test_sync_serve_tcp_threads() -> None:
    with asocket.sync.serve_tcp(sync_echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        results: list[bytes] = []

        def client(i: int) -> None:
            with asocket.sync.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"t%d" % i)
                results.append(sock.recv(10))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert sorted(results) == sorted(b"t%d" % i for i in range(5))


def test_sync_max_connections_and_grace_closes_connections() -> None:
    started = threading.Event()

    def handler(sock: asocket.sync.socket, addr: Any) -> None:
        started.set()
        sock.recv(10)  # blocks until the server closes the connection

    server = asocket.sync.serve_tcp(handler, "127.0.0.1", 0, max_connections=1, grace_period=0.1)
    port = server.sockets[0].getsockname()[1]
    address = ("127.0.0.1", port)
    with (
        asocket.sync.create_connection(address, timeout=5) as a,
        asocket.sync.create_connection(address, timeout=5),
    ):
        assert started.wait(5)
        time.sleep(0.1)
        assert server.active_connections == 1
        t0 = time.monotonic()
        server.close()
        server.wait_closed()
        assert time.monotonic() - t0 < 5
        assert server.active_connections == 0
        assert a.recv(10) == b""


def test_sync_serve_unix(tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")
    with (
        asocket.sync.serve_unix(sync_echo, path),
        asocket.sync.socket(asocket.sync.AF_UNIX, asocket.sync.SOCK_STREAM) as sock,
    ):
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(b"unix")
        assert sock.recv(10) == b"unix"
    assert not os.path.exists(path)


def test_max_connections_must_be_positive() -> None:
    with pytest.raises(ValueError):
        asocket.sync.serve_tcp(sync_echo, "127.0.0.1", 0, max_connections=0)
    with pytest.raises(ValueError):
        asyncio.run(asocket.serve_tcp(echo, "127.0.0.1", 0, max_connections=-1))
