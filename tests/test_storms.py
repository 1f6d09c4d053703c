"""Storms: thousands of cancelled and timed-out calls while data streams in, on every
backend (the loop without ``add_reader`` and trio included: see ``conftest.py``), and the
byte stream compared.

A cancelled or timed-out ``recv``/``recv_into``/``accept`` consumes nothing (docs/semantics.md,
"Cancellation"), so whatever the storm, the reader ends up with exactly
the bytes the writer sent, in order.
"""

from __future__ import annotations

import hashlib
import os

import anyio
import pytest
from _async_helpers import WAIT, Tasks, bounded, tcp_pair

import asocket
from asocket._ops import READ

TOTAL = 256 * 1024  # bytes streamed per storm
ROUNDS = 3000  # cancellations / timeouts per storm, at most


async def _writer(sock: asocket.socket, data: bytes) -> None:
    """Send ``data`` in small pieces with pauses, so reads race with arrivals."""
    view = memoryview(data)
    for i in range(0, len(data), 997):
        await sock.sendall(view[i : i + 997])
        # Pauses longer than a uvloop timer tick: the reader's calls meet an empty socket.
        await anyio.sleep(0.002 if (i // 997) % 2 else 0)
    sock.shutdown(asocket.SHUT_WR)


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["cancel", "move_on_after", "settimeout"])
async def test_recv_storm_loses_nothing(how: str) -> None:
    data = os.urandom(TOTAL)
    cli, srv = await tcp_pair()
    async with Tasks() as tasks:
        with cli, srv:
            writer = tasks.spawn(_writer(cli, data))
            got = bytearray()
            if how == "settimeout":
                srv.settimeout(0.0005)
            rounds = interrupted = 0
            with anyio.fail_after(60):
                while True:
                    rounds += 1
                    interrupted += 1  # undone below when the call returns
                    chunk: bytes | None = None
                    if how == "cancel" and rounds < ROUNDS:
                        task = tasks.spawn(srv.recv(4096))
                        await anyio.sleep(0)
                        if not task.done():
                            task.cancel()
                            await task.wait()  # it may have completed meanwhile: keep it
                        if task.cancelled():
                            continue
                        chunk = task.result()
                    elif how == "move_on_after" and rounds < ROUNDS:
                        with anyio.move_on_after(0.0002):
                            chunk = await srv.recv(4096)
                        if chunk is None:
                            continue
                    elif how == "settimeout" and rounds < ROUNDS:
                        try:
                            chunk = await srv.recv(4096)
                        except TimeoutError:
                            continue
                    else:
                        srv.settimeout(WAIT)
                        chunk = await bounded(srv.recv(65536))
                    interrupted -= 1
                    if not chunk:
                        break
                    got += chunk
            await writer.join()
    assert interrupted > 50, "the storm did not interrupt calls: it tests nothing"
    assert len(got) == len(data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


@pytest.mark.anyio
async def test_recv_into_storm_loses_nothing() -> None:
    data = os.urandom(TOTAL)
    cli, srv = await tcp_pair()
    async with Tasks() as tasks:
        with cli, srv:
            writer = tasks.spawn(_writer(cli, data))
            got = bytearray()
            buf = bytearray(4096)
            with anyio.fail_after(60):
                for rounds in range(10**9):
                    n: int | None = None
                    with anyio.move_on_after(0.0002 if rounds < ROUNDS else WAIT):
                        n = await srv.recv_into(buf)
                    if n is None:
                        assert rounds < ROUNDS, "the last recv_into was not done within its bound"
                        continue
                    if not n:
                        break
                    got += buf[:n]
            await writer.join()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


@pytest.mark.anyio
async def test_accept_storm_loses_no_connection() -> None:
    lst = asocket.socket()
    await lst.bind(("127.0.0.1", 0))
    lst.listen(64)
    clients: list[asocket.socket] = []
    accepted: list[asocket.socket] = []
    with lst:
        try:
            with anyio.fail_after(60):
                for i in range(300):
                    if i % 3 == 0:
                        c = asocket.socket()
                        clients.append(c)
                        await c.connect(lst.getsockname())
                    with anyio.move_on_after(0.0002):
                        conn, _ = await lst.accept()
                        accepted.append(conn)
                while len(accepted) < len(clients):
                    conn, _ = await bounded(lst.accept())
                    accepted.append(conn)
            assert len(accepted) == len(clients)
            lst.settimeout(0.0)
            with pytest.raises(BlockingIOError):
                await lst.accept()  # nothing was left behind either
        finally:
            for s in clients + accepted:
                s.close()


def _parked(sock: asocket.socket) -> int:
    """How many waits the socket's waiter holds for its fd's readability: futures on an
    asyncio loop (done ones included: a cancelled wait leaves its future until the next
    wait or wake-up drops it), parked tasks under trio."""
    waiter = sock._w
    entry = getattr(waiter, "_fds", {}).get(sock.fileno())
    if entry is None:
        return 0
    if hasattr(entry, "waiters"):
        return len(entry.waiters[READ])
    return len(entry.followers[READ]) + entry.leading[READ]


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["cancel", "settimeout"])
async def test_interrupted_waits_leave_no_trail(how: str) -> None:
    """Thousands of reads on an idle socket, each cancelled or timed out while it waits:
    the waiter holds at most one stale wait for the fd afterwards (nothing grows with
    the count), and the next read still gets the data."""
    cli, srv = await tcp_pair()
    with cli, srv:
        if how == "settimeout":
            srv.settimeout(0.0001)
        with anyio.fail_after(60):
            for _ in range(2000):
                if how == "cancel":
                    with anyio.move_on_after(0):
                        await srv.recv(10)  # waits (nothing there), then is cancelled
                else:
                    with pytest.raises(TimeoutError):
                        await srv.recv(10)
                assert _parked(srv) <= 1
        await cli.sendall(b"after")
        srv.settimeout(WAIT)
        assert await bounded(srv.recv(10)) == b"after"
        assert _parked(srv) <= 1
