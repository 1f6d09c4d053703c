"""Reliability (issue 12): soaks, faults and storms, every byte hashed, bounded in time.

* soak: ``serve_tcp`` with 1,000 concurrent connections on each loop kind, and
  200 threads on the sync face; every byte hashed both ways (the client's
  payload against what the handler received, what the handler sent against
  what the client received); descriptors back to the baseline after;
* faults: resets mid-transfer, half-close, slowloris, connect-and-vanish while
  the server serves the others, nothing reaching the loop's exception handler
  (conftest checks that after every async test);
* storms: cancelled (and timed-out) ``sendall`` calls leave a prefix of each
  interrupted payload then exactly the later payloads; ``close()`` while many
  tasks or threads wait wakes every one with ``OSError(EBADF)``, no descriptor
  leaked.

Every test is bounded (``asyncio.timeout``, joins with timeouts); the counts
each test reaches are asserted, so a test that stops exercising its case fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import resource
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

import asocket
import asocket.sync

SOAK_ASYNC = 1000  # concurrent connections per loop kind
SOAK_THREADS = 200  # concurrent connections (threads) on the sync face
BOUND = 60.0  # no test may take longer than this, whatever happens


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def nofile(need: int) -> Iterator[None]:
    """Raise the soft RLIMIT_NOFILE to the hard limit for the test (skip if too low)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need} descriptors needed")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def settle_fds(baseline: int) -> int:
    """The descriptor count, once it is back to ``baseline`` (or after a bounded wait)."""
    for _ in range(200):
        count = open_fds()
        if count <= baseline:
            return count
        await asyncio.sleep(0.01)
    return open_fds()


def settle_fds_sync(baseline: int) -> int:
    for _ in range(200):
        count = open_fds()
        if count <= baseline:
            return count
        time.sleep(0.01)
    return open_fds()


Ledger = dict[int, tuple[str, str]]  # client port -> (sha of bytes received, sha of bytes sent)


def async_hashing_echo(ledger: Ledger) -> Callable[[asocket.socket, Any], Awaitable[None]]:
    """An echo handler recording, per client port, the hashes of what it received and sent."""

    async def handler(sock: asocket.socket, address: Any) -> None:
        rx, tx = hashlib.sha256(), hashlib.sha256()
        try:
            while data := await sock.recv(65536):
                rx.update(data)
                await sock.sendall(data)
                tx.update(data)
        finally:
            ledger[address[1]] = (rx.hexdigest(), tx.hexdigest())

    return handler


def sync_hashing_echo(ledger: Ledger) -> Callable[[asocket.sync.socket, Any], None]:
    def handler(sock: asocket.sync.socket, address: Any) -> None:
        rx, tx = hashlib.sha256(), hashlib.sha256()
        try:
            while data := sock.recv(65536):
                rx.update(data)
                sock.sendall(data)
                tx.update(data)
        finally:
            ledger[address[1]] = (rx.hexdigest(), tx.hexdigest())

    return handler


# -- soak -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_soak_serve_tcp_1000_concurrent_connections(loop_kind: str) -> None:
    rng = random.Random(1000)
    payloads = [rng.randbytes(rng.randrange(1, 32 * 1024)) for _ in range(SOAK_ASYNC)]
    with nofile(2 * SOAK_ASYNC + 200):
        baseline = open_fds()
        ledger: Ledger = {}
        connected = 0
        all_connected = asyncio.Event()
        go = asyncio.Event()

        async def client(payload: bytes) -> tuple[int, str, str]:
            nonlocal connected
            sock = asocket.socket()
            with sock:
                await sock.connect(("127.0.0.1", port))
                me = sock.getsockname()[1]
                connected += 1
                if connected == SOAK_ASYNC:
                    all_connected.set()
                await go.wait()
                await sock.sendall(payload)
                sock.shutdown(asocket.SHUT_WR)
                got = hashlib.sha256()
                while chunk := await sock.recv(65536):
                    got.update(chunk)
                return me, sha(payload), got.hexdigest()

        server = await asocket.serve_tcp(
            async_hashing_echo(ledger), "127.0.0.1", 0, backlog=SOAK_ASYNC
        )
        async with asyncio.timeout(BOUND), server:
            port = server.sockets[0].getsockname()[1]
            clients = [asyncio.create_task(client(p)) for p in payloads]
            try:
                await all_connected.wait()
                while server.active_connections < SOAK_ASYNC:  # every one accepted, at once
                    await asyncio.sleep(0.01)
                peak = server.active_connections
                go.set()
                results = await asyncio.gather(*clients)
            finally:
                for task in clients:
                    task.cancel()
                await asyncio.gather(*clients, return_exceptions=True)
            while server.active_connections:  # the handlers record their hashes as they end
                await asyncio.sleep(0.01)
        assert peak == SOAK_ASYNC
        assert len(results) == SOAK_ASYNC
        for me, sent, received in results:
            assert ledger[me] == (sent, received)  # handler got what was sent, sent what came
            assert sent == received
        assert await settle_fds(baseline) == baseline


def test_soak_sync_serve_tcp_200_threads() -> None:
    rng = random.Random(200)
    payloads = [rng.randbytes(rng.randrange(1, 64 * 1024)) for _ in range(SOAK_THREADS)]
    with nofile(2 * SOAK_THREADS + 200):
        baseline = open_fds()
        ledger: Ledger = {}
        barrier = threading.Barrier(SOAK_THREADS + 1, timeout=BOUND)
        results: list[tuple[int, str, str]] = []
        errors: list[BaseException] = []

        def client(payload: bytes) -> None:
            try:
                with asocket.sync.create_connection(("127.0.0.1", port), timeout=BOUND) as sock:
                    me = sock.getsockname()[1]
                    barrier.wait()  # all connected
                    barrier.wait()  # the server has them all
                    sock.sendall(payload)
                    sock.shutdown(asocket.sync.SHUT_WR)
                    got = hashlib.sha256()
                    while chunk := sock.recv(65536):
                        got.update(chunk)
                    results.append((me, sha(payload), got.hexdigest()))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                barrier.abort()

        with asocket.sync.serve_tcp(
            sync_hashing_echo(ledger), "127.0.0.1", 0, backlog=SOAK_THREADS
        ) as server:
            port = server.sockets[0].getsockname()[1]
            threads = [threading.Thread(target=client, args=(p,)) for p in payloads]
            for t in threads:
                t.start()
            try:
                barrier.wait()
                deadline = time.monotonic() + BOUND
                while server.active_connections < SOAK_THREADS and time.monotonic() < deadline:
                    time.sleep(0.01)
                peak = server.active_connections
                barrier.wait()
            finally:
                for t in threads:
                    t.join(BOUND)
            deadline = time.monotonic() + BOUND
            while server.active_connections and time.monotonic() < deadline:
                time.sleep(0.01)
        assert not errors, errors[:3]
        assert peak == SOAK_THREADS
        assert len(results) == SOAK_THREADS
        for me, sent, received in results:
            assert ledger[me] == (sent, received)
            assert sent == received
        assert settle_fds_sync(baseline) == baseline
