"""1-byte ping-pong between two tasks (or threads) over a ``socket.socketpair()``.

The client sends ``b"p"`` and waits for the echo; the server echoes every byte
until it reads ``b"q"``. Both ends sit on the same event loop (or, for the
thread peers, in two threads of this process), so one round trip is two sends,
two receives, and two waits for readiness. The figure is microseconds per
round trip. Every peer uses its own natural calls: ``loop.sock_sendall`` /
``loop.sock_recv``, stream ``write``+``drain`` / ``read``, trio and asocket
``send``/``sendall`` and ``recv``, anyio ``send`` / ``receive``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import _common as c

import asocket
import asocket.sync

PING = b"p"
QUIT = b"q"

Send = Callable[[bytes], Awaitable[Any]]
Recv = Callable[[int], Awaitable[bytes]]


async def _client(send: Send, recv: Recv, plan: c.Plan) -> list[float]:
    clock = c.Clock(plan)
    n = plan.batch
    with c.no_gc():
        for timed in clock.batches():
            t0 = time.perf_counter_ns()
            for _ in range(n):
                await send(PING)
                if await recv(1) != PING:  # pragma: no cover - a benchmark bug
                    raise AssertionError("ping-pong: wrong echo")
            clock.record(timed, time.perf_counter_ns() - t0, n)
    await send(QUIT)
    return clock.samples


async def _server(send: Send, recv: Recv) -> None:
    while (data := await recv(1)) == PING:
        await send(data)


async def _on_asyncio(
    send: Send, recv: Recv, ssend: Send, srecv: Recv, plan: c.Plan
) -> list[float]:
    """Client in this task, server in another task of the running asyncio loop."""
    server = asyncio.create_task(_server(ssend, srecv))
    try:
        samples = await _client(send, recv, plan)
        await server
        return samples
    finally:
        if not server.done():  # the client failed: do not leave the server waiting
            server.cancel()
            await asyncio.gather(server, return_exceptions=True)


# -- peers -----------------------------------------------------------------------


def loop_sock(loop: str) -> Callable[[c.Plan], list[float]]:
    """``loop.sock_sendall`` / ``loop.sock_recv`` on non-blocking stdlib sockets."""

    async def main(plan: c.Plan) -> list[float]:
        ev = asyncio.get_running_loop()
        a, b = socket.socketpair()
        with a, b:
            a.setblocking(False)
            b.setblocking(False)
            return await _on_asyncio(
                lambda d: ev.sock_sendall(a, d),
                lambda n: ev.sock_recv(a, n),
                lambda d: ev.sock_sendall(b, d),
                lambda n: ev.sock_recv(b, n),
                plan,
            )

    return lambda plan: c.run_on(loop, lambda: main(plan))


def streams(loop: str) -> Callable[[c.Plan], list[float]]:
    """asyncio streams (``open_connection(sock=...)``): ``write`` + ``drain``, ``read``."""

    def sender(writer: asyncio.StreamWriter) -> Send:
        async def send(data: bytes) -> None:
            writer.write(data)
            await writer.drain()

        return send

    async def main(plan: c.Plan) -> list[float]:
        a, b = socket.socketpair()
        ra, wa = await asyncio.open_connection(sock=a)
        rb, wb = await asyncio.open_connection(sock=b)
        try:
            return await _on_asyncio(sender(wa), ra.read, sender(wb), rb.read, plan)
        finally:
            for w in (wa, wb):
                w.close()
                await w.wait_closed()

    return lambda plan: c.run_on(loop, lambda: main(plan))


def asocket_async(loop: str, timeout: float | None = None) -> Callable[[c.Plan], list[float]]:
    """``asocket.socketpair()``: ``await sock.sendall`` / ``await sock.recv``."""

    async def main(plan: c.Plan) -> list[float]:
        a, b = asocket.socketpair()
        with a, b:
            a.settimeout(timeout)
            b.settimeout(timeout)
            return await _on_asyncio(a.sendall, a.recv, b.sendall, b.recv, plan)

    return lambda plan: c.run_on(loop, lambda: main(plan))


def anyio_peer(backend: str) -> Callable[[c.Plan], list[float]]:
    """anyio ``UNIXSocketStream.from_socket``: ``send`` / ``receive``, in a task group."""

    def run(plan: c.Plan) -> list[float]:
        import anyio
        import anyio.abc

        async def main() -> list[float]:
            a, b = socket.socketpair()
            sa = await anyio.abc.UNIXSocketStream.from_socket(a)
            sb = await anyio.abc.UNIXSocketStream.from_socket(b)
            async with sa, sb, anyio.create_task_group() as tg:
                tg.start_soon(_server, sb.send, sb.receive)
                samples = await _client(sa.send, sa.receive, plan)
            return samples

        return anyio.run(main, backend=backend)

    return run


def trio_peer(plan: c.Plan) -> list[float]:
    """``trio.socket.from_stdlib_socket``: ``send`` / ``recv``, in a nursery."""
    import trio

    async def main() -> list[float]:
        a, b = socket.socketpair()
        with trio.socket.from_stdlib_socket(a) as ta, trio.socket.from_stdlib_socket(b) as tb:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_server, tb.send, tb.recv)
                return await _client(ta.send, ta.recv, plan)

    return trio.run(main)


def threads(
    make_pair: Callable[[], tuple[Any, Any]], timeout: float | None = None
) -> Callable[[c.Plan], list[float]]:
    """Two threads, ``sendall`` / ``recv``, blocking (or timeout) mode."""

    def run(plan: c.Plan) -> list[float]:
        a, b = make_pair()
        a.settimeout(timeout)
        b.settimeout(timeout)

        def server() -> None:
            while (data := b.recv(1)) == PING:
                b.sendall(data)

        thread = threading.Thread(target=server, name="pingpong-server")
        with a, b:
            thread.start()
            try:
                clock = c.Clock(plan)
                n = plan.batch
                send, recv = a.sendall, a.recv
                with c.no_gc():
                    for timed in clock.batches():
                        t0 = time.perf_counter_ns()
                        for _ in range(n):
                            send(PING)
                            if recv(1) != PING:  # pragma: no cover - a benchmark bug
                                raise AssertionError("ping-pong: wrong echo")
                        clock.record(timed, time.perf_counter_ns() - t0, n)
                send(QUIT)
            finally:
                a.shutdown(socket.SHUT_RDWR)  # the server's recv returns b"" at worst
                thread.join(10)
        return clock.samples

    return run


PEERS: list[tuple[str, Callable[[c.Plan], list[float]]]] = [
    ("asyncio sock_*", loop_sock("asyncio")),
    ("uvloop sock_*", loop_sock("uvloop")),
    ("asyncio streams", streams("asyncio")),
    ("uvloop streams", streams("uvloop")),
    ("anyio (asyncio backend)", anyio_peer("asyncio")),
    ("trio", trio_peer),
    ("asocket, asyncio", asocket_async("asyncio")),
    ("asocket, uvloop", asocket_async("uvloop")),
    ("asocket timeout=5, asyncio", asocket_async("asyncio", 5.0)),
    ("asocket timeout=5, uvloop", asocket_async("uvloop", 5.0)),
    ("stdlib threads", threads(socket.socketpair)),
    ("asocket.sync threads", threads(asocket.sync.socketpair)),
    ("stdlib timeout=5 threads", threads(socket.socketpair, 5.0)),
    ("asocket.sync timeout=5 threads", threads(asocket.sync.socketpair, 5.0)),
]

BASELINE = "asyncio sock_*"

VERSUS = [
    ("asocket, asyncio", "asyncio sock_*"),
    ("asocket, asyncio", "asyncio streams"),
    ("asocket, asyncio", "anyio (asyncio backend)"),
    ("asocket, asyncio", "trio"),
    ("asocket, uvloop", "uvloop sock_*"),
    ("asocket, uvloop", "uvloop streams"),
    ("asocket, uvloop", "trio"),
    ("asocket.sync threads", "stdlib threads"),
    ("asocket.sync timeout=5 threads", "stdlib timeout=5 threads"),
]


def run(plan: c.Plan, select: Callable[[str], bool], rounds: int) -> list[c.Result]:
    """Run every selected row, ``rounds`` times round-robin; one ``Result`` per row."""
    return c.run_rows(PEERS, plan, select, rounds)


def run_one(name: str, count: int) -> None:
    """Run ``count`` round trips of peer ``name`` untimed (for ``strace``)."""
    fn = dict(PEERS)[name]
    fn(c.Plan(batch=count, batches=1, warmup=0, budget=float("inf")))
