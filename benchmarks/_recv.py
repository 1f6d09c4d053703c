"""recv of buffered data: the cost of one call when the data is already there.

Each variant receives from one end of a ``socket.socketpair()`` whose other
end (a blocking stdlib socket) refills the buffer with ``batch`` bytes before
each batch, outside the timed region; the batch then makes ``batch`` calls of
``recv(1)``, so no call ever waits. The figure is the per-call time in
microseconds, loop overhead included (the same ``for`` loop for every variant).
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any

import _common as c

import asocket
import asocket.sync

REFILL_BYTE = b"r"
MARK = b"!"


def _sync_batches(plan: c.Plan, sock: Any, peer: socket.socket) -> list[float]:
    """Time ``sock.recv(1)`` over buffered data, batch by batch."""
    recv = sock.recv
    refill = REFILL_BYTE * plan.batch
    clock = c.Clock(plan)
    n = plan.batch
    with c.no_gc():
        for timed in clock.batches():
            peer.sendall(refill)
            t0 = time.perf_counter_ns()
            for _ in range(n):
                recv(1)
            clock.record(timed, time.perf_counter_ns() - t0, n)
    # Every refill byte was consumed: the next recv sees only the mark (an
    # AF_UNIX send is in the peer's buffer when it returns, so even a
    # non-blocking recv finds it).
    peer.sendall(MARK)
    if sock.recv(16) != MARK:  # pragma: no cover - a benchmark bug
        raise AssertionError("recv benchmark: a batch did not drain the buffer")
    return clock.samples


async def _async_batches(
    plan: c.Plan, recv: Callable[[int], Coroutine[Any, Any, bytes]], peer: socket.socket
) -> list[float]:
    """Time ``await recv(1)`` over buffered data, batch by batch."""
    refill = REFILL_BYTE * plan.batch
    clock = c.Clock(plan)
    n = plan.batch
    with c.no_gc():
        for timed in clock.batches():
            peer.sendall(refill)
            t0 = time.perf_counter_ns()
            for _ in range(n):
                await recv(1)
            clock.record(timed, time.perf_counter_ns() - t0, n)
    peer.sendall(MARK)
    if await recv(16) != MARK:  # pragma: no cover - a benchmark bug
        raise AssertionError("recv benchmark: a batch did not drain the buffer")
    return clock.samples


def _stdlib(timeout: float | None) -> Callable[[c.Plan], list[float]]:
    def run(plan: c.Plan) -> list[float]:
        sock, peer = socket.socketpair()
        with sock, peer:
            sock.settimeout(timeout)
            return _sync_batches(plan, sock, peer)

    return run


def _asocket_sync(timeout: float | None) -> Callable[[c.Plan], list[float]]:
    def run(plan: c.Plan) -> list[float]:
        raw, peer = socket.socketpair()
        with asocket.sync.from_socket(raw) as sock, peer:
            sock.settimeout(timeout)
            return _sync_batches(plan, sock, peer)

    return run


def _asocket_async(loop: str, timeout: float | None) -> Callable[[c.Plan], list[float]]:
    def run(plan: c.Plan) -> list[float]:
        async def main() -> list[float]:
            raw, peer = socket.socketpair()
            with asocket.from_socket(raw) as sock, peer:
                sock.settimeout(timeout)
                return await _async_batches(plan, sock.recv, peer)

        return c.run_on(loop, main)

    return run


def _loop_sock_recv(loop: str) -> Callable[[c.Plan], list[float]]:
    def run(plan: c.Plan) -> list[float]:
        async def main() -> list[float]:
            sock, peer = socket.socketpair()
            with sock, peer:
                sock.setblocking(False)
                sock_recv = asyncio.get_running_loop().sock_recv
                return await _async_batches(plan, lambda n: sock_recv(sock, n), peer)

        return c.run_on(loop, main)

    return run


VARIANTS: list[tuple[str, Callable[[c.Plan], list[float]]]] = [
    ("stdlib blocking", _stdlib(None)),
    ("stdlib timeout=5", _stdlib(5.0)),
    ("stdlib non-blocking", _stdlib(0.0)),
    ("asocket.sync blocking", _asocket_sync(None)),
    ("asocket.sync timeout=5", _asocket_sync(5.0)),
    ("asocket.sync non-blocking", _asocket_sync(0.0)),
    ("await asocket, asyncio", _asocket_async("asyncio", None)),
    ("await asocket timeout=5, asyncio", _asocket_async("asyncio", 5.0)),
    ("await asocket, uvloop", _asocket_async("uvloop", None)),
    ("await asocket timeout=5, uvloop", _asocket_async("uvloop", 5.0)),
    ("loop.sock_recv, asyncio", _loop_sock_recv("asyncio")),
    ("loop.sock_recv, uvloop", _loop_sock_recv("uvloop")),
]

BASELINE = "stdlib blocking"

VERSUS = [
    ("asocket.sync blocking", "stdlib blocking"),
    ("asocket.sync timeout=5", "stdlib timeout=5"),
    ("asocket.sync non-blocking", "stdlib non-blocking"),
    ("await asocket, asyncio", "loop.sock_recv, asyncio"),
    ("await asocket, uvloop", "loop.sock_recv, uvloop"),
]


def run(plan: c.Plan, select: Callable[[str], bool], rounds: int) -> list[c.Result]:
    """Run every selected row, ``rounds`` times round-robin; one ``Result`` per row."""
    return c.run_rows(VARIANTS, plan, select, rounds)
