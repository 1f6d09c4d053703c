"""Connection set-up: what one connect + close to a loopback listener costs, and how
long a connect to a dual-stack ``localhost`` with ``::1`` black-holed takes.

Table a (per call): each call opens a TCP connection to ``127.0.0.1:port`` with
the peer's natural call and closes it from the client side; µs per call. The
listener is a plain stdlib socket with a backlog larger than a batch, and
nothing accepts during a timed batch: on loopback the kernel completes the
handshake inside the client's ``connect``, so the accept side costs the client
nothing. After each batch (untimed) the accept queue is drained: every
accepted socket gets ``SO_LINGER`` 0 and is closed, which resets the
connection. The client's own close is the ordinary FIN; the reset then takes
its socket out of FIN_WAIT2 at once, so no client socket is left in TIME_WAIT
and thousands of connects do not eat the ephemeral ports. The accept side is
thus the same for every peer and outside every timed region.

Table b (time to connect): ``localhost`` resolves to ``::1`` then
``127.0.0.1`` (``socket.getaddrinfo`` is patched in this process, for the
name ``localhost`` only, to answer from the two literals; with the patch on,
every other host must be a literal: nothing is ever looked up). ``::1`` on
the port is black-holed: an IPv6 listener with ``listen(0)`` whose accept
queue is full, so the kernel drops further SYNs. A Happy Eyeballs client
starts the ``127.0.0.1`` attempt after its delay; the stdlib's
``create_connection`` tries one address after the other, and waits out its
timeout on ``::1`` first. ms from the call to the connected socket (the close
is not timed); each sample is checked to be connected to ``127.0.0.1``.
"""

from __future__ import annotations

import asyncio
import select
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import _common as c

import asocket
import asocket.sync

Address = tuple[str, int]
Connect = Callable[[Address], Awaitable[None]]  # one connect + close

_LINGER_0 = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() resets


@dataclass(frozen=True)
class ConnectPlan:
    """``rate``: table a, one batch is ``batch`` connects (the listener's backlog is
    larger); ``eyeballs``: table b, up to ``batches`` timed connects per row (no
    warm-up, one round), stopping early (after at least one) once ``budget`` passes."""

    rate: c.Plan
    eyeballs: c.Plan


class Listener:
    """``127.0.0.1:port``, listening with room for a whole batch; never accepts on its own."""

    def __init__(self, batch: int) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=max(2 * batch, 128))
        self.sock.setblocking(False)
        self.address: Address = self.sock.getsockname()

    def drain(self) -> int:
        """Accept what is queued and reset each connection; the count."""
        n = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return n
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_0)
            conn.close()
            n += 1

    def close(self) -> None:
        self.drain()
        self.sock.close()  # resets what is still queued


# -- table a: connect + close, per call -----------------------------------------------


def sync_peer(connect: Callable[[Address], Any]) -> Callable[[c.Plan], list[float]]:
    """A blocking call that returns a connected socket: ``connect(address).close()``."""

    def run(plan: c.Plan) -> list[float]:
        listener = Listener(plan.batch)
        try:
            address = listener.address
            clock = c.Clock(plan)
            n = plan.batch
            with c.no_gc():
                for timed in clock.batches():
                    t0 = time.perf_counter_ns()
                    for _ in range(n):
                        connect(address).close()
                    clock.record(timed, time.perf_counter_ns() - t0, n)
                    if listener.drain() != n:  # pragma: no cover - a benchmark bug
                        raise AssertionError("connect: a connection is missing")
            return clock.samples
        finally:
            listener.close()

    return run


async def _batches(once: Connect, plan: c.Plan) -> list[float]:
    listener = Listener(plan.batch)
    try:
        address = listener.address
        clock = c.Clock(plan)
        n = plan.batch
        with c.no_gc():
            for timed in clock.batches():
                t0 = time.perf_counter_ns()
                for _ in range(n):
                    await once(address)
                clock.record(timed, time.perf_counter_ns() - t0, n)
                if listener.drain() != n:  # pragma: no cover - a benchmark bug
                    raise AssertionError("connect: a connection is missing")
        return clock.samples
    finally:
        listener.close()


def on_loop(loop: str, make: Callable[[], Connect]) -> Callable[[c.Plan], list[float]]:
    """``make()`` (called on the running loop) returns the coroutine for one call."""

    async def main(plan: c.Plan) -> list[float]:
        return await _batches(make(), plan)

    return lambda plan: c.run_on(loop, lambda: main(plan))


def loop_sock_connect() -> Connect:
    """``loop.sock_connect`` on a new non-blocking stdlib socket."""
    ev = asyncio.get_running_loop()

    async def once(address: Address) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            await ev.sock_connect(sock, address)
        finally:
            sock.close()

    return once


def open_connection() -> Connect:
    """``asyncio.open_connection``, then ``writer.close()`` + ``await writer.wait_closed()``."""

    async def once(address: Address) -> None:
        _, writer = await asyncio.open_connection(*address)
        writer.close()
        await writer.wait_closed()

    return once


def asocket_create_connection() -> Connect:
    """``await asocket.create_connection(address)`` (Happy Eyeballs driver), then close."""

    async def once(address: Address) -> None:
        (await asocket.create_connection(address)).close()

    return once


def asocket_connect() -> Connect:
    """``await sock.connect(address)`` on a new ``asocket.socket()`` (blocking mode)."""

    async def once(address: Address) -> None:
        sock = asocket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            await sock.connect(address)
        finally:
            sock.close()

    return once


def sock_connect(new: Callable[[int, int], Any]) -> Callable[[Address], Any]:
    """``new(AF_INET, SOCK_STREAM).connect(address)`` in blocking mode: the connected socket."""

    def connect(address: Address) -> Any:
        sock = new(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.connect(address)
        except BaseException:
            sock.close()
            raise
        return sock

    return connect


def trio_peer(plan: c.Plan) -> list[float]:
    """``trio.open_tcp_stream(host, port)``, then ``await stream.aclose()``, on ``trio.run``."""
    import trio

    async def once(address: Address) -> None:
        stream = await trio.open_tcp_stream(*address)
        await stream.aclose()

    return trio.run(_batches, once, plan)


PEERS: list[tuple[str, Callable[[c.Plan], list[float]]]] = [
    ("stdlib create_connection", sync_peer(socket.create_connection)),
    ("asocket.sync create_connection", sync_peer(asocket.sync.create_connection)),
    ("stdlib sock.connect", sync_peer(sock_connect(socket.socket))),
    ("asocket.sync sock.connect", sync_peer(sock_connect(asocket.sync.socket))),
    ("asyncio sock_connect", on_loop("asyncio", loop_sock_connect)),
    ("asyncio open_connection", on_loop("asyncio", open_connection)),
    ("asocket create_connection, asyncio", on_loop("asyncio", asocket_create_connection)),
    ("asocket sock.connect, asyncio", on_loop("asyncio", asocket_connect)),
    ("uvloop sock_connect", on_loop("uvloop", loop_sock_connect)),
    ("uvloop open_connection", on_loop("uvloop", open_connection)),
    ("asocket create_connection, uvloop", on_loop("uvloop", asocket_create_connection)),
    ("asocket sock.connect, uvloop", on_loop("uvloop", asocket_connect)),
    ("trio open_tcp_stream", trio_peer),
]

BASELINE = "asyncio sock_connect"

VERSUS = [
    ("asocket create_connection, asyncio", "asyncio sock_connect"),
    ("asocket create_connection, asyncio", "asyncio open_connection"),
    ("asocket create_connection, asyncio", "trio open_tcp_stream"),
    ("asocket sock.connect, asyncio", "asyncio sock_connect"),
    ("asocket create_connection, uvloop", "uvloop sock_connect"),
    ("asocket create_connection, uvloop", "uvloop open_connection"),
    ("asocket sock.connect, uvloop", "uvloop sock_connect"),
    ("asocket.sync create_connection", "stdlib create_connection"),
    ("asocket.sync sock.connect", "stdlib sock.connect"),
]


# -- table b: time to connect, ::1 black-holed ----------------------------------------


@contextmanager
def dual_stack_localhost() -> Iterator[None]:
    """Patch ``socket.getaddrinfo``: ``localhost`` is ``::1`` then ``127.0.0.1``; every
    other host is answered as a literal only (``AI_NUMERICHOST``): nothing is looked up."""
    real = socket.getaddrinfo

    def getaddrinfo(
        host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[Any]:
        numeric = flags | socket.AI_NUMERICHOST
        if host not in ("localhost", b"localhost"):
            return real(host, port, family, type, proto, numeric)
        if flags & socket.AI_NUMERICHOST:  # trio asks "is it a literal?" first
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        infos: list[Any] = []
        for literal, fam in (("::1", socket.AF_INET6), ("127.0.0.1", socket.AF_INET)):
            if family in (socket.AF_UNSPEC, fam):
                infos += real(literal, port, fam, type, proto, numeric)
        return infos

    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = real


class BlackHoled:
    """``127.0.0.1:port`` listening; ``::1`` on the same port listening with a full
    accept queue, so its SYNs are dropped (as the tests' fixture does)."""

    def __init__(self) -> None:
        self.v4 = Listener(64)
        self.port = self.v4.address[1]
        self.held: list[socket.socket] = []
        try:
            six = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            self.held.append(six)
            six.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            six.bind(("::1", self.port))
            six.listen(0)
            for _ in range(8):
                filler = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
                self.held.append(filler)
                filler.setblocking(False)
                filler.connect_ex(("::1", self.port))
                if not select.select([], [filler], [], 0.2)[1]:
                    break  # this one hangs: the queue is full
            else:
                raise RuntimeError("this TCP stack never fills a listen queue")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.v4.close()
        for sock in self.held:
            sock.close()


def _check(peer: Any) -> None:
    if peer[0] != "127.0.0.1":  # pragma: no cover - a benchmark bug
        raise AssertionError(f"connected to {peer[0]}, not 127.0.0.1")


def _eyeball_times(plan: c.Plan) -> Iterator[int]:
    """Yield the sample number while the plan allows another: at most ``batches``,
    at least one, none started after ``budget`` seconds."""
    stop = time.perf_counter() + plan.budget
    for i in range(plan.batches):
        if i >= 1 and time.perf_counter() > stop:
            return
        yield i


def eyeballs_sync(connect: Callable[[Address], Any]) -> Callable[[c.Plan], list[float]]:
    def run(plan: c.Plan) -> list[float]:
        net = BlackHoled()
        samples = []
        try:
            for _ in _eyeball_times(plan):
                t0 = time.perf_counter_ns()
                sock = connect(("localhost", net.port))
                samples.append((time.perf_counter_ns() - t0) / 1e6)
                with sock:
                    _check(sock.getpeername())
                net.v4.drain()
        finally:
            net.close()
        return samples

    return run


def eyeballs_async(
    loop: str, connect: Callable[[Address], Awaitable[Any]]
) -> Callable[[c.Plan], list[float]]:
    """``connect`` returns what ``_close_async`` closes; ms to its return."""

    async def main(plan: c.Plan) -> list[float]:
        net = BlackHoled()
        samples = []
        try:
            for _ in _eyeball_times(plan):
                t0 = time.perf_counter_ns()
                conn = await connect(("localhost", net.port))
                samples.append((time.perf_counter_ns() - t0) / 1e6)
                await _close_async(conn)
                net.v4.drain()
        finally:
            net.close()
        return samples

    return lambda plan: c.run_on(loop, lambda: main(plan))


async def _close_async(conn: Any) -> None:
    if isinstance(conn, asyncio.StreamWriter):
        _check(conn.get_extra_info("peername"))
        conn.close()
        await conn.wait_closed()
    else:
        with conn:
            _check(conn.getpeername())


async def _asyncio_open(address: Address) -> asyncio.StreamWriter:
    _, writer = await asyncio.open_connection(*address, happy_eyeballs_delay=0.25)
    return writer


def eyeballs_trio(plan: c.Plan) -> list[float]:
    import trio

    async def main() -> list[float]:
        net = BlackHoled()
        samples = []
        try:
            for _ in _eyeball_times(plan):
                t0 = time.perf_counter_ns()
                stream = await trio.open_tcp_stream("localhost", net.port)  # delay: 0.25
                samples.append((time.perf_counter_ns() - t0) / 1e6)
                _check(stream.socket.getpeername())
                await stream.aclose()
                net.v4.drain()
        finally:
            net.close()
        return samples

    return trio.run(main)


EYEBALLS: list[tuple[str, Callable[[c.Plan], list[float]]]] = [
    ("asyncio open_connection, delay 0.25", eyeballs_async("asyncio", _asyncio_open)),
    ("trio open_tcp_stream, delay 0.25", eyeballs_trio),
    ("asocket, asyncio, delay 0.25", eyeballs_async("asyncio", asocket.create_connection)),
    (
        "asocket, asyncio, delay 0.05",
        eyeballs_async(
            "asyncio", lambda a: asocket.create_connection(a, happy_eyeballs_delay=0.05)
        ),
    ),
    ("asocket.sync, delay 0.25", eyeballs_sync(asocket.sync.create_connection)),
    (
        "stdlib create_connection, timeout 1",
        eyeballs_sync(lambda a: socket.create_connection(a, timeout=1.0)),
    ),
]

EYEBALLS_BASELINE = "asyncio open_connection, delay 0.25"

EYEBALLS_VERSUS = [
    ("asocket, asyncio, delay 0.25", "asyncio open_connection, delay 0.25"),
    ("asocket, asyncio, delay 0.25", "trio open_tcp_stream, delay 0.25"),
    ("asocket.sync, delay 0.25", "stdlib create_connection, timeout 1"),
]


def run(
    plan: ConnectPlan, select: Callable[[str], bool], rounds: int
) -> tuple[list[c.Result], list[c.Result]]:
    """Table a (``rounds`` rounds, round-robin) and table b (one round: its figures are
    set by the delays, not by noise); one ``Result`` per selected row in each."""
    rate = c.run_rows(PEERS, plan.rate, select, rounds)
    with dual_stack_localhost():
        eyeballs = c.run_rows(EYEBALLS, plan.eyeballs, select, 1)
    return rate, eyeballs
