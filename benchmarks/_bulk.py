"""Bulk throughput: ``total`` bytes through one loopback TCP connection.

The sender writes a 1 MiB block ``total / 1 MiB`` times with ``sendall`` (or
the peer's equivalent); the receiver reads into a reusable 256 KiB buffer with
``recv_into`` (streams and anyio have no ``recv_into``: they ``read`` /
``receive`` up to 256 KiB). One transfer is one sample; the figure is MB/s
(10**6 bytes per second), from the first send to the last byte received.

Both ends get fixed 1 MiB socket buffers (SO_SNDBUF/SO_RCVBUF, which Linux
doubles): with TCP autotuning the single-threaded peers' figures swing by 2x
from one transfer to the next, depending on how the windows happened to grow.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import _common as c

import asocket
import asocket.sync

BLOCK = 1 << 20
RECV_BUF = 256 << 10
SOCKBUF = 1 << 20
PAYLOAD = bytes(range(256)) * (BLOCK // 256)


@dataclass(frozen=True)
class BulkPlan:
    """One round of a row: one untimed transfer, then up to ``reps`` timed transfers of
    ``total`` bytes, stopping early (after at least 3) once ``budget`` seconds pass."""

    total: int
    reps: int
    budget: float


class _Samples:
    """MB/s per transfer; the first (warm-up: TCP windows grow) is dropped."""

    def __init__(self, plan: BulkPlan) -> None:
        self.plan = plan
        self.mbps: list[float] = []
        self._stop = time.perf_counter() + plan.budget

    def transfers(self) -> Iterator[bool]:
        """Yield ``timed`` for each transfer: False for the warm-up, then True."""
        yield False
        for i in range(self.plan.reps):
            if i >= 3 and time.perf_counter() > self._stop:
                return
            yield True

    def record(self, timed: bool, elapsed_ns: int) -> None:
        if timed:
            self.mbps.append(self.plan.total / (elapsed_ns / 1e9) / 1e6)


async def _transfers(
    plan: BulkPlan,
    send_block: Callable[[], Awaitable[Any]],
    receive: Callable[[], Awaitable[int]],
) -> list[float]:
    """Run the transfers on the running asyncio loop: sender task, receiver here."""
    blocks = plan.total // BLOCK

    async def sender() -> None:
        for _ in range(blocks):
            await send_block()

    samples = _Samples(plan)
    for timed in samples.transfers():
        t0 = time.perf_counter_ns()
        task = asyncio.ensure_future(sender())
        try:
            got = 0
            while got < plan.total:
                got += await receive()
            await task
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        samples.record(timed, time.perf_counter_ns() - t0)
    return samples.mbps


def _eof_check(n: int) -> int:
    if not n:  # pragma: no cover - a benchmark bug
        raise AssertionError("bulk: unexpected end of stream")
    return n


def loop_sock(loop: str) -> Callable[[BulkPlan], list[float]]:
    """``loop.sock_sendall`` / ``loop.sock_recv_into``."""

    async def main(plan: BulkPlan) -> list[float]:
        ev = asyncio.get_running_loop()
        a, b = c.tcp_pair(SOCKBUF)
        buf = bytearray(RECV_BUF)
        with a, b:
            a.setblocking(False)
            b.setblocking(False)

            async def receive() -> int:
                return _eof_check(await ev.sock_recv_into(b, buf))

            return await _transfers(plan, lambda: ev.sock_sendall(a, PAYLOAD), receive)

    return lambda plan: c.run_on(loop, lambda: main(plan))


def streams(loop: str) -> Callable[[BulkPlan], list[float]]:
    """asyncio streams: ``write`` + ``drain`` / ``read(256 KiB)``."""

    async def main(plan: BulkPlan) -> list[float]:
        a, b = c.tcp_pair(SOCKBUF)
        _, wa = await asyncio.open_connection(sock=a)
        rb, wb = await asyncio.open_connection(sock=b)

        async def send_block() -> None:
            wa.write(PAYLOAD)
            await wa.drain()

        async def receive() -> int:
            return _eof_check(len(await rb.read(RECV_BUF)))

        try:
            return await _transfers(plan, send_block, receive)
        finally:
            for w in (wa, wb):
                w.close()
                await w.wait_closed()

    return lambda plan: c.run_on(loop, lambda: main(plan))


def asocket_async(loop: str) -> Callable[[BulkPlan], list[float]]:
    """``await sock.sendall`` / ``await sock.recv_into``."""

    async def main(plan: BulkPlan) -> list[float]:
        a, b = c.tcp_pair(SOCKBUF)
        buf = bytearray(RECV_BUF)
        with asocket.from_socket(a) as sa, asocket.from_socket(b) as sb:

            async def receive() -> int:
                return _eof_check(await sb.recv_into(buf))

            return await _transfers(plan, lambda: sa.sendall(PAYLOAD), receive)

    return lambda plan: c.run_on(loop, lambda: main(plan))


def anyio_peer(backend: str) -> Callable[[BulkPlan], list[float]]:
    """anyio ``SocketStream.from_socket``: ``send`` / ``receive(256 KiB)``."""

    def run(plan: BulkPlan) -> list[float]:
        import anyio
        import anyio.abc

        async def main() -> list[float]:
            a, b = c.tcp_pair(SOCKBUF)
            sa = await anyio.abc.SocketStream.from_socket(a)
            sb = await anyio.abc.SocketStream.from_socket(b)
            samples = _Samples(plan)

            async def sender() -> None:
                for _ in range(plan.total // BLOCK):
                    await sa.send(PAYLOAD)

            async with sa, sb:
                for timed in samples.transfers():
                    t0 = time.perf_counter_ns()
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(sender)
                        got = 0
                        while got < plan.total:
                            got += len(await sb.receive(RECV_BUF))
                    samples.record(timed, time.perf_counter_ns() - t0)
            return samples.mbps

        return anyio.run(main, backend=backend)

    return run


def trio_peer(plan: BulkPlan) -> list[float]:
    """trio: ``SocketStream.send_all`` / ``socket.recv_into``."""
    import trio

    async def main() -> list[float]:
        a, b = c.tcp_pair(SOCKBUF)
        samples = _Samples(plan)
        buf = bytearray(RECV_BUF)
        with trio.socket.from_stdlib_socket(a) as ta, trio.socket.from_stdlib_socket(b) as tb:
            stream = trio.SocketStream(ta)

            async def sender() -> None:
                for _ in range(plan.total // BLOCK):
                    await stream.send_all(PAYLOAD)

            for timed in samples.transfers():
                t0 = time.perf_counter_ns()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(sender)
                    got = 0
                    while got < plan.total:
                        got += _eof_check(await tb.recv_into(buf))
                samples.record(timed, time.perf_counter_ns() - t0)
        return samples.mbps

    return trio.run(main)


def threads(wrap: Callable[[socket.socket], Any]) -> Callable[[BulkPlan], list[float]]:
    """A sender thread and a receiving thread, blocking sockets: ``sendall`` / ``recv_into``."""

    def run(plan: BulkPlan) -> list[float]:
        a, b = c.tcp_pair(SOCKBUF)
        samples = _Samples(plan)
        buf = bytearray(RECV_BUF)
        with wrap(a) as sa, wrap(b) as sb:

            def sender() -> None:
                for _ in range(plan.total // BLOCK):
                    sa.sendall(PAYLOAD)

            for timed in samples.transfers():
                t0 = time.perf_counter_ns()
                thread = threading.Thread(target=sender, name="bulk-sender")
                thread.start()
                try:
                    got = 0
                    while got < plan.total:
                        got += _eof_check(sb.recv_into(buf))
                finally:
                    thread.join(30)
                samples.record(timed, time.perf_counter_ns() - t0)
        return samples.mbps

    return run


PEERS: list[tuple[str, Callable[[BulkPlan], list[float]]]] = [
    ("asyncio sock_*", loop_sock("asyncio")),
    ("uvloop sock_*", loop_sock("uvloop")),
    ("asyncio streams", streams("asyncio")),
    ("uvloop streams", streams("uvloop")),
    ("anyio (asyncio backend)", anyio_peer("asyncio")),
    ("trio", trio_peer),
    ("asocket, asyncio", asocket_async("asyncio")),
    ("asocket, uvloop", asocket_async("uvloop")),
    ("stdlib threads", threads(lambda s: s)),
    ("asocket.sync threads", threads(asocket.sync.from_socket)),
]

BASELINE = "asyncio sock_*"

VERSUS = [
    ("asocket, asyncio", "asyncio sock_*"),
    ("asocket, asyncio", "asyncio streams"),
    ("asocket, asyncio", "anyio (asyncio backend)"),
    ("asocket, asyncio", "trio"),
    ("asocket, uvloop", "uvloop sock_*"),
    ("asocket, uvloop", "uvloop streams"),
    ("asocket.sync threads", "stdlib threads"),
]


def run(plan: BulkPlan, select: Callable[[str], bool], rounds: int) -> list[c.Result]:
    """Run every selected row, ``rounds`` times round-robin; one ``Result`` per row."""
    return c.run_rows(PEERS, plan, select, rounds)
