"""Several tasks on one socket, close while waiting, cancellation, loops, EINTR.

The named tricky paths (docs/semantics.md, docs/design.md): robbed wake-up, close while waiting,
fd reuse after close, cancel at every await, EINTR via ``signal.setitimer``.
Every ``anyio`` test runs one body on each backend: the loop matrix and trio (see
``conftest.py``). The tests of sockets across asyncio loops stay asyncio's.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import signal
import socket
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from _async_helpers import (
    CHUNK,
    Task,
    Tasks,
    bounded,
    cancelled,
    drain,
    fill,
    listener,
    pending_connect_target,
    small_buffers,
    tcp_pair,
    wait_all,
    wait_first,
)
from conftest import LOOPS

import asocket

PROMPT = 1.0  # "promptly"
SERVED = 1.0  # bound on a wait for a task that should be served

# -- helpers -----------------------------------------------------------------------


async def ebadf_promptly(*waiters: Task[Any]) -> None:
    """Each of ``waiters`` ends promptly with OSError(EBADF)."""
    t0 = time.monotonic()
    pending = await wait_all(*waiters)
    assert not pending, f"still waiting after close(): {pending}"
    assert time.monotonic() - t0 < PROMPT
    for task in waiters:
        exc = task.exception()
        assert isinstance(exc, OSError), repr(exc)
        assert exc.errno == errno.EBADF, repr(exc)


# -- several tasks on one socket ----------------------------------------------------


@pytest.mark.anyio
async def test_two_readers_both_served() -> None:
    async with Tasks() as tasks:
        a, b = asocket.socketpair(asocket.AF_UNIX, asocket.SOCK_DGRAM)
        with a, b:
            r1 = await tasks.start(b.recv(100))
            r2 = await tasks.start(b.recv(100))
            await a.send(b"one")
            await a.send(b"two")
            assert not await wait_all(r1, r2, timeout=SERVED), "a reader was never served"
            assert sorted([r1.result(), r2.result()]) == [b"one", b"two"]


@pytest.mark.anyio
async def test_two_stream_readers_both_served() -> None:
    async with Tasks() as tasks:
        a, b = asocket.socketpair()
        with a, b:
            r1 = await tasks.start(b.recv(100))
            r2 = await tasks.start(b.recv(100))
            await a.sendall(b"one")
            assert len(await wait_first(r1, r2, timeout=SERVED)) == 1
            await a.sendall(b"two")
            assert not await wait_all(r1, r2, timeout=SERVED), "a reader was never served"
            assert sorted([r1.result(), r2.result()]) == [b"one", b"two"]


@pytest.mark.anyio
async def test_reader_and_writer_concurrently() -> None:
    """One task waits in recv while another waits in sendall on the same socket."""
    async with Tasks() as tasks:
        a, b = asocket.socketpair()
        with a, b:
            small_buffers(a, b)
            payload = b"w" * (2 * 1024 * 1024)
            reader = await tasks.start(a.recv(100))
            writer = await tasks.start(a.sendall(payload))  # the buffer fills: it waits
            got = 0
            while got < len(payload):  # the peer drains the writer's data...
                data = await bounded(b.recv(CHUNK))
                assert data
                got += len(data)
            await writer.join()
            assert got == len(payload)
            assert not reader.done()
            await b.sendall(b"reply")  # ...and answers the reader
            assert await reader.join() == b"reply"


@pytest.mark.anyio
async def test_robbed_wakeup() -> None:
    """Two tasks wait for one message: one gets it, the other keeps waiting (a wake-up
    that finds nothing is a false positive) and gets the next one."""
    async with Tasks() as tasks:
        a, b = asocket.socketpair(asocket.AF_UNIX, asocket.SOCK_DGRAM)
        with a, b:
            r1 = await tasks.start(b.recv(100))
            r2 = await tasks.start(b.recv(100))
            await a.send(b"first")
            done = await wait_first(r1, r2, timeout=SERVED)
            assert len(done) == 1, "nobody got the first message"
            assert done[0].result() == b"first"
            await anyio.sleep(0.2)
            (other,) = {r1, r2} - set(done)
            assert not other.done()  # robbed, still waiting: no spurious b'' or error
            await a.send(b"second")
            assert not await wait_all(other, timeout=SERVED), "the robbed task was never served"
            assert other.result() == b"second"


@pytest.mark.anyio
async def test_robbed_wakeup_keeps_deadline() -> None:
    """The robbed task keeps its own deadline: it times out if nothing else comes."""
    async with Tasks() as tasks:
        a, b = asocket.socketpair(asocket.AF_UNIX, asocket.SOCK_DGRAM)
        with a, b:
            b.settimeout(0.5)
            r1 = await tasks.start(b.recv(100))
            r2 = await tasks.start(b.recv(100))
            await a.send(b"only")
            assert not await wait_all(r1, r2)
            results = [t.exception() or t.result() for t in (r1, r2)]
            assert b"only" in results
            (exc,) = [r for r in results if r != b"only"]
            assert isinstance(exc, TimeoutError), repr(exc)
            assert str(exc) == "timed out"


@pytest.mark.anyio
async def test_two_accept_waiters_both_served() -> None:
    async with Tasks() as tasks:
        with await listener() as lst:
            t1 = await tasks.start(lst.accept())
            t2 = await tasks.start(lst.accept())
            with asocket.socket() as c1, asocket.socket() as c2:
                await bounded(c1.connect(lst.getsockname()))
                await bounded(c2.connect(lst.getsockname()))
                pending = await wait_all(t1, t2, timeout=SERVED)
                for task in (t1, t2):
                    if task.done():
                        task.result()[0].close()
                assert not pending, "an accept waiter was never served"


# -- close while waiting -------------------------------------------------------------


@pytest.mark.anyio
async def test_close_wakes_recv() -> None:
    async with Tasks() as tasks:
        a, b = asocket.socketpair()
        with a, b:
            task = await tasks.start(b.recv(10))
            b.close()
            await ebadf_promptly(task)
            assert b.fileno() == -1


@pytest.mark.anyio
async def test_close_wakes_recv_tcp_with_timeout() -> None:
    async with Tasks() as tasks:
        a, b = await tcp_pair()
        with a, b:
            b.settimeout(3.0)
            task = await tasks.start(b.recv(10))
            b.close()
            await ebadf_promptly(task)


@pytest.mark.anyio
async def test_close_wakes_two_readers_and_a_writer() -> None:
    async with Tasks() as tasks:
        a, b = asocket.socketpair()
        with a, b:
            small_buffers(b, a)
            await fill(b)
            r1 = await tasks.start(b.recv(10))
            r2 = await tasks.start(b.recv(10))
            w = await tasks.start(b.sendall(b"x" * (1024 * 1024)))
            b.close()
            await ebadf_promptly(r1, r2, w)


@pytest.mark.anyio
async def test_close_wakes_accept() -> None:
    async with Tasks() as tasks:
        with await listener() as lst:
            task = await tasks.start(lst.accept())
            lst.close()
            await ebadf_promptly(task)


@pytest.mark.anyio
async def test_close_wakes_sendall() -> None:
    async with Tasks() as tasks:
        a, b = asocket.socketpair()
        with a, b:
            small_buffers(a, b)
            await fill(a)
            task = await tasks.start(a.sendall(b"x" * (1024 * 1024)))
            a.close()
            await ebadf_promptly(task)


@pytest.mark.anyio
async def test_close_wakes_connect() -> None:
    async with Tasks() as tasks:
        lst, fillers = pending_connect_target()
        try:
            with asocket.socket() as cli:
                task = await tasks.start(cli.connect(lst.getsockname()))
                cli.close()
                await ebadf_promptly(task)
        finally:
            for s in (lst, *fillers):
                s.close()


@pytest.mark.anyio
async def test_close_then_calls_raise_ebadf() -> None:
    a, b = asocket.socketpair()
    with a:
        b.close()
        for call in (b.recv(1), b.sendall(b"x"), b.recv_into(bytearray(1)), b.send(b"x")):
            with pytest.raises(OSError) as info:
                await call
            assert info.value.errno == errno.EBADF


@pytest.mark.anyio
async def test_fd_reuse_after_close_no_stale_wakeup(backend: str) -> None:
    """Close a socket a task waits on; a new socket that gets the same fd number sees no
    stale wake-up: the old waiter gets EBADF and a wait on the new socket behaves."""
    async with Tasks() as tasks:
        a, b = asocket.socketpair()
        with a:
            old_fd = b.fileno()
            old_waiter = await tasks.start(b.recv(10))
            b.close()
            if backend == "noreadiness":
                # The completion waiter closes the fd once its sock_* task has unwound
                # (as _loop_completion documents): let it, before taking the number again.
                await ebadf_promptly(old_waiter)
            # The lowest free number is the one just closed.
            c, d = asocket.socketpair()
            with c, d:
                assert old_fd in (c.fileno(), d.fileno()), (old_fd, c.fileno(), d.fileno())
                reused, peer = (c, d) if c.fileno() == old_fd else (d, c)
                new_waiter = await tasks.start(reused.recv(10))
                await ebadf_promptly(old_waiter)
                await anyio.sleep(0.1)
                assert not new_waiter.done()  # no stale wake-up gave it a bogus result
                await peer.sendall(b"new")
                assert await new_waiter.join() == b"new"
                # The new socket keeps working both ways, and waits again.
                await reused.sendall(b"back")
                assert await bounded(peer.recv(10)) == b"back"
                again = await tasks.start(reused.recv(10))
                await peer.sendall(b"again")
                assert await again.join() == b"again"


@pytest.mark.anyio
async def test_fd_reuse_readable_at_once(backend: str) -> None:
    """The new socket on the reused number is readable before anyone waits on it: the
    old registration must not have survived to deliver that readiness to the old waiter."""
    async with Tasks() as tasks:
        a, b = asocket.socketpair()
        with a:
            old_fd = b.fileno()
            old_waiter = await tasks.start(b.recv(10))
            b.close()
            if backend == "noreadiness":
                await ebadf_promptly(old_waiter)
            raw_a, raw_b = socket.socketpair()
            with raw_a, raw_b:
                assert old_fd in (raw_a.fileno(), raw_b.fileno())
                raw_a.sendall(b"ready")
                raw_b.sendall(b"ready")
                await ebadf_promptly(old_waiter)
                assert raw_a.recv(10) == b"ready"  # nothing was consumed by a stale waiter
                assert raw_b.recv(10) == b"ready"


@pytest.mark.anyio
async def test_fd_reuse_after_close_of_listener(backend: str) -> None:
    async with Tasks() as tasks:
        lst = await listener()
        with lst:
            old_fd = lst.fileno()
            old_waiter = await tasks.start(lst.accept())
            lst.close()
            if backend == "noreadiness":
                await ebadf_promptly(old_waiter)
            with await listener() as lst2:
                assert lst2.fileno() == old_fd
                new_waiter = await tasks.start(lst2.accept())
                await ebadf_promptly(old_waiter)
                with asocket.socket() as cli:
                    await bounded(cli.connect(lst2.getsockname()))
                    conn, _ = await new_waiter.join()
                    conn.close()


# -- cancellation at each await ----------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("timeout", [None, 5.0])
async def test_cancel_recv_consumes_nothing(timeout: float | None) -> None:
    async with Tasks() as tasks:
        a, b = asocket.socketpair()
        with a, b:
            b.settimeout(timeout)
            await cancelled(await tasks.start(b.recv(10)))
            await a.sendall(b"kept")
            assert await bounded(b.recv(10)) == b"kept"


@pytest.mark.anyio
async def test_cancel_recv_by_a_deadline() -> None:
    """A cancel scope's deadline (asyncio.wait_for's timeout, trio.fail_after) cancels the
    recv: nothing is consumed."""
    a, b = asocket.socketpair()
    with a, b:
        for _ in range(3):
            with pytest.raises(TimeoutError), anyio.fail_after(0.05):
                await b.recv(10)
        await a.sendall(b"kept")
        assert await bounded(b.recv(10)) == b"kept"


@pytest.mark.anyio
async def test_cancel_recv_into_consumes_nothing() -> None:
    async with Tasks() as tasks:
        a, b = asocket.socketpair()
        with a, b:
            buf = bytearray(10)
            await cancelled(await tasks.start(b.recv_into(buf)))
            await cancelled(await tasks.start(b.recv_into(buf, 4)))
            assert buf == bytearray(10)
            await a.sendall(b"kept")
            n = await bounded(b.recv_into(buf))
            assert buf[:n] == b"kept"


@pytest.mark.anyio
async def test_cancel_recvfrom_consumes_nothing() -> None:
    async with Tasks() as tasks:
        with (
            asocket.socket(asocket.AF_INET, asocket.SOCK_DGRAM) as a,
            asocket.socket(asocket.AF_INET, asocket.SOCK_DGRAM) as b,
        ):
            await a.bind(("127.0.0.1", 0))
            await b.bind(("127.0.0.1", 0))
            await cancelled(await tasks.start(b.recvfrom(100)))
            await cancelled(await tasks.start(b.recvfrom_into(bytearray(100))))
            await a.sendto(b"dgram", b.getsockname())
            await a.sendto(b"dgram2", b.getsockname())
            data, addr = await bounded(b.recvfrom(100))
            assert data == b"dgram"
            assert addr == a.getsockname()
            buf = bytearray(100)
            n, addr = await bounded(b.recvfrom_into(buf))
            assert buf[:n] == b"dgram2"


@pytest.mark.anyio
async def test_cancel_recvmsg_consumes_nothing() -> None:
    async with Tasks() as tasks:
        a, b = asocket.socketpair()
        with a, b:
            await cancelled(await tasks.start(b.recvmsg(100)))
            await cancelled(await tasks.start(b.recvmsg_into([bytearray(10)])))
            await a.sendall(b"kept")
            data, _, _, _ = await bounded(b.recvmsg(100))
            assert data == b"kept"


@pytest.mark.anyio
async def test_cancel_accept_consumes_nothing() -> None:
    async with Tasks() as tasks:
        with await listener() as lst:
            await cancelled(await tasks.start(lst.accept()))
            with asocket.socket() as cli:
                await bounded(cli.connect(lst.getsockname()))
                conn, addr = await bounded(lst.accept())
                with conn:
                    assert addr == cli.getsockname()
                    await cli.sendall(b"hi")
                    assert await bounded(conn.recv(10)) == b"hi"


@pytest.mark.anyio
async def test_cancel_accept_as_connection_arrives() -> None:
    """Cancel an accept in the same loop turn a connection arrives: the connection is
    either returned by it or still queued for the next accept, never lost."""
    async with Tasks() as tasks:
        with await listener() as lst:
            task = await tasks.start(lst.accept())
            with asocket.socket() as cli:
                await bounded(cli.connect(lst.getsockname()))
                task.cancel()
                await task.wait()
                if task.cancelled():
                    conn, _ = await bounded(lst.accept())
                else:
                    conn, _ = task.result()
                with conn:
                    await cli.sendall(b"hi")
                    assert await bounded(conn.recv(10)) == b"hi"


@pytest.mark.anyio
async def test_cancel_sendall_sends_nothing_more() -> None:
    async with Tasks() as tasks:
        a, b = asocket.socketpair()
        with a, b:
            small_buffers(a, b)
            filled = await fill(a)
            await cancelled(await tasks.start(a.sendall(b"s" * (4 * 1024 * 1024))))
            # Everything sent before the cancel arrives; then the count stays stable.
            first = await drain(b)
            assert first >= filled
            await anyio.sleep(0.2)
            b.setblocking(False)
            with pytest.raises(BlockingIOError):
                await b.recv(CHUNK)  # nothing more trickles in after the cancel
            b.setblocking(True)
            # The socket still works: the next bytes on the wire are the next call's.
            await bounded(a.sendall(b"END"))
            assert await bounded(b.recv(CHUNK)) == b"END"


@pytest.mark.anyio
async def test_cancel_sendall_while_peer_drains() -> None:
    """Cancel a sendall while a reader is draining: the peer's count stops growing."""
    async with Tasks() as tasks:
        a, b = asocket.socketpair()
        with a, b:
            small_buffers(a, b)
            count = 0

            async def reader() -> None:
                nonlocal count
                while True:
                    data = await b.recv(4096)
                    if not data:
                        return
                    count += len(data)
                    await anyio.sleep(0.002)

            tasks.spawn(reader())
            await cancelled(await tasks.start(a.sendall(b"s" * (16 * 1024 * 1024)), 0.2))
            assert count > 0
            # Let the reader take whatever was in flight, then the count must hold.
            stable = -1
            for _ in range(50):
                await anyio.sleep(0.1)
                if count == stable:
                    break
                stable = count
            await anyio.sleep(0.3)
            assert count == stable
            await bounded(a.sendall(b"E" * 10))
            for _ in range(100):
                if count == stable + 10:
                    break
                await anyio.sleep(0.01)
            assert count == stable + 10


@pytest.mark.anyio
async def test_cancel_send_socket_usable() -> None:
    async with Tasks() as tasks:
        a, b = asocket.socketpair()
        with a, b:
            small_buffers(a, b)
            filled = await fill(a)
            await cancelled(await tasks.start(a.send(b"x" * CHUNK)))
            assert await drain(b) == filled
            assert await bounded(a.send(b"ok")) == 2
            assert await bounded(b.recv(10)) == b"ok"


@pytest.mark.anyio
@pytest.mark.parametrize("timeout", [None, 5.0])
async def test_cancel_connect_then_close(timeout: float | None) -> None:
    async with Tasks() as tasks:
        lst, fillers = pending_connect_target()
        try:
            cli = asocket.socket()
            cli.settimeout(timeout)
            await cancelled(await tasks.start(cli.connect(lst.getsockname())))
            cli.close()  # no error, no loop exception, no warning
            assert cli.fileno() == -1
            cli.close()
        finally:
            for s in (lst, *fillers):
                s.close()
        # A fresh socket connects fine afterwards.
        with await listener() as lst2, asocket.socket() as cli2:
            await bounded(cli2.connect(lst2.getsockname()))
            conn, _ = await bounded(lst2.accept())
            conn.close()


# -- sockets and loops ---------------------------------------------------------------


@pytest.fixture
def outside_pair() -> Iterator[tuple[asocket.socket, asocket.socket]]:
    """A socket pair made while no event loop runs."""
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()
    a, b = asocket.socketpair()
    a.settimeout(5.0)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


@pytest.mark.anyio
async def test_socket_made_outside_loop_works_inside(
    outside_pair: tuple[asocket.socket, asocket.socket],
) -> None:
    async with Tasks() as tasks:
        a, b = outside_pair
        reader = await tasks.start(a.recv(10))
        await b.sendall(b"inside")
        assert await reader.join() == b"inside"
        await a.sendall(b"back")
        assert await bounded(b.recv(10)) == b"back"
        a.close()
        b.close()


async def _exchange(a: asocket.socket, b: asocket.socket, msg: bytes) -> bytes:
    """Wait in a.recv (so this loop registers the fd), answer from b, then time out.

    (asyncio's: the tests below run it on asyncio loops of their own making.)"""
    reader = asyncio.ensure_future(a.recv(100))
    try:
        await asyncio.sleep(0.02)
        assert not reader.done()
        await b.sendall(msg)
        got: bytes = await bounded(reader)
    finally:
        reader.cancel()
    a.settimeout(0.05)
    with pytest.raises(TimeoutError):
        await a.recv(1)
    a.settimeout(None)
    return got


@pytest.mark.parametrize("kind", list(LOOPS))
def test_socket_in_successive_loops(kind: str) -> None:
    """One socket pair used by three loops of a kind, one after the other."""
    a, b = asocket.socketpair()
    with a, b:
        for msg in (b"first run", b"second run", b"third run"):
            with asyncio.Runner(loop_factory=LOOPS[kind]) as runner:
                assert runner.run(_exchange(a, b, msg)) == msg


def test_socket_in_two_successive_asyncio_run() -> None:
    a, b = asocket.socketpair()
    with a, b:
        assert asyncio.run(_exchange(a, b, b"one")) == b"one"
        assert asyncio.run(_exchange(a, b, b"two")) == b"two"


def test_socket_across_loop_kinds() -> None:
    """The same socket on each loop kind in turn (readiness, completion, readiness)."""
    a, b = asocket.socketpair()
    with a, b:
        for kind in [*LOOPS, *LOOPS]:
            with asyncio.Runner(loop_factory=LOOPS[kind]) as runner:
                assert runner.run(_exchange(a, b, kind.encode())) == kind.encode()


@pytest.mark.asyncio
async def test_socket_from_closed_loop_in_thread(loop_kind: str) -> None:
    """A socket waited on in another (since closed) loop still works in this one.

    asyncio's only: it makes a loop of the test's kind in a thread (trio's counterpart is
    test_trio.py's test_one_socket_across_two_trio_runs)."""
    async with Tasks() as tasks:
        a, b = asocket.socketpair()
        with a, b:

            def other_loop() -> None:
                with asyncio.Runner(loop_factory=LOOPS[loop_kind]) as runner:
                    runner.run(_exchange(a, b, b"elsewhere"))

            await bounded(asyncio.to_thread(other_loop))
            reader = await tasks.start(a.recv(10))
            await b.sendall(b"here")
            assert await reader.join() == b"here"


# -- EINTR -------------------------------------------------------------------------------


@pytest.fixture
def sigalrm_storm() -> Iterator[list[int]]:
    """SIGALRM every 10 ms with a no-op handler; restores handler and timer after."""
    hits: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        hits.append(signum)

    old_handler = signal.signal(signal.SIGALRM, handler)
    old_timer = signal.getitimer(signal.ITIMER_REAL)
    signal.setitimer(signal.ITIMER_REAL, 0.01, 0.01)
    try:
        yield hits
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_timer[0] > 0:  # e.g. pytest-timeout's own alarm
            signal.setitimer(signal.ITIMER_REAL, *old_timer)


@pytest.mark.anyio
async def test_eintr_recv_with_timeout(sigalrm_storm: list[int]) -> None:
    async with Tasks() as tasks:
        a, b = asocket.socketpair()
        with a, b:
            b.settimeout(3.0)

            async def later() -> None:
                await anyio.sleep(0.3)
                await a.sendall(b"after signals")

            tasks.spawn(later())
            assert await bounded(b.recv(100)) == b"after signals"
            # An expiring timeout under signals is still a TimeoutError.
            b.settimeout(0.2)
            with pytest.raises(TimeoutError) as info:
                await bounded(b.recv(100))
            assert str(info.value) == "timed out"
        assert len(sigalrm_storm) >= 5


@pytest.mark.anyio
async def test_eintr_sendall_to_slow_reader(sigalrm_storm: list[int]) -> None:
    async with Tasks() as tasks:
        a, b = asocket.socketpair()
        with a, b:
            small_buffers(a, b)
            payload = bytes(range(251)) * (4 * 1024 * 1024 // 251)  # ~4 MiB
            a.settimeout(20.0)

            async def slow_reader() -> bytes:
                h = hashlib.sha256()
                got = 0
                while got < len(payload):
                    data = await b.recv(CHUNK)
                    assert data
                    h.update(data)
                    got += len(data)
                    await anyio.sleep(0.001)
                return h.digest()

            reader = tasks.spawn(slow_reader())
            await bounded(a.sendall(payload), 30)
            assert await reader.join(30) == hashlib.sha256(payload).digest()
        assert len(sigalrm_storm) >= 5
