"""Storms: thousands of cancelled and timed-out calls while data streams in, on every
loop kind (the loop without ``add_reader`` included), and the byte stream compared.

A cancelled or timed-out ``recv``/``recv_into``/``accept`` consumes nothing (docs/semantics.md,
"Cancellation"), so whatever the storm, the reader ends up with exactly
the bytes the writer sent, in order.
"""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest
from _async_helpers import WAIT, tcp_pair

import asocket

TOTAL = 256 * 1024  # bytes streamed per storm
ROUNDS = 3000  # cancellations / timeouts per storm, at most


async def _writer(sock: asocket.socket, data: bytes) -> None:
    """Send ``data`` in small pieces with pauses, so reads race with arrivals."""
    view = memoryview(data)
    for i in range(0, len(data), 997):
        await sock.sendall(view[i : i + 997])
        # Pauses longer than a uvloop timer tick: the reader's calls meet an empty socket.
        await asyncio.sleep(0.002 if (i // 997) % 2 else 0)
    sock.shutdown(asocket.SHUT_WR)


@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["cancel", "wait_for", "settimeout"])
async def test_recv_storm_loses_nothing(loop_kind: str, how: str) -> None:
    data = os.urandom(TOTAL)
    cli, srv = await tcp_pair()
    with cli, srv:
        writer = asyncio.create_task(_writer(cli, data))
        got = bytearray()
        if how == "settimeout":
            srv.settimeout(0.0005)
        rounds = interrupted = 0
        async with asyncio.timeout(60):
            while True:
                rounds += 1
                interrupted += 1  # undone below when the call returns
                if how == "cancel" and rounds < ROUNDS:
                    task = asyncio.create_task(srv.recv(4096))
                    await asyncio.sleep(0)
                    if task.done():
                        chunk = task.result()
                    else:
                        task.cancel()
                        try:
                            chunk = await task  # it may have completed meanwhile: keep it
                        except asyncio.CancelledError:
                            continue
                elif how == "wait_for" and rounds < ROUNDS:
                    try:
                        chunk = await asyncio.wait_for(srv.recv(4096), 0.0002)
                    except TimeoutError:
                        continue
                elif how == "settimeout" and rounds < ROUNDS:
                    try:
                        chunk = await srv.recv(4096)
                    except TimeoutError:
                        continue
                else:
                    srv.settimeout(WAIT)
                    chunk = await srv.recv(65536)
                interrupted -= 1
                if not chunk:
                    break
                got += chunk
        await asyncio.wait_for(writer, WAIT)
    assert interrupted > 50, "the storm did not interrupt calls: it tests nothing"
    assert len(got) == len(data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


@pytest.mark.asyncio
async def test_recv_into_storm_loses_nothing(loop_kind: str) -> None:
    data = os.urandom(TOTAL)
    cli, srv = await tcp_pair()
    with cli, srv:
        writer = asyncio.create_task(_writer(cli, data))
        got = bytearray()
        buf = bytearray(4096)
        async with asyncio.timeout(60):
            for rounds in range(10**9):
                timeout = 0.0002 if rounds < ROUNDS else WAIT
                try:
                    n = await asyncio.wait_for(srv.recv_into(buf), timeout)
                except TimeoutError:
                    continue
                if not n:
                    break
                got += buf[:n]
        await asyncio.wait_for(writer, WAIT)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()


@pytest.mark.asyncio
async def test_accept_storm_loses_no_connection(loop_kind: str) -> None:
    lst = asocket.socket()
    await lst.bind(("127.0.0.1", 0))
    lst.listen(64)
    clients: list[asocket.socket] = []
    accepted: list[asocket.socket] = []
    with lst:
        try:
            async with asyncio.timeout(60):
                for i in range(300):
                    if i % 3 == 0:
                        c = asocket.socket()
                        clients.append(c)
                        await c.connect(lst.getsockname())
                    try:
                        conn, _ = await asyncio.wait_for(lst.accept(), 0.0002)
                    except TimeoutError:
                        continue
                    accepted.append(conn)
                while len(accepted) < len(clients):
                    conn, _ = await asyncio.wait_for(lst.accept(), WAIT)
                    accepted.append(conn)
            assert len(accepted) == len(clients)
            lst.settimeout(0.0)
            with pytest.raises(BlockingIOError):
                await lst.accept()  # nothing was left behind either
        finally:
            for s in clients + accepted:
                s.close()
