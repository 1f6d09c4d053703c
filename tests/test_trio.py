"""asocket under ``trio.run``: the semantics on trio's clock, waiters, close, cancellation
and trio's checkpoint rules.

Each test runs its body with ``trio.run`` and a ``trio.testing.MockClock(autojump_threshold=0)``:
timeouts pass in virtual time (instantly), and a deadlock jumps to the test's own
``fail_after`` bound instead of hanging. (These are trio-only promises; the bodies shared
with the asyncio loops are in test_anyio.py.)
"""

from __future__ import annotations

import errno
import logging
import struct
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trio")
import trio
import trio.testing

import asocket

BOUND = 3600.0  # virtual seconds: a deadlock fails the test at once (autojump)


def run(body: Callable[[], Awaitable[None]], *, threads: bool = False) -> None:
    """Run ``body`` under trio with a mock clock, bounded.

    ``threads``: the body waits for worker threads (name resolution), which run in real
    time while an autojumping clock would jump past every deadline: use the real clock.
    """

    async def bounded() -> None:
        with trio.fail_after(10.0 if threads else BOUND):
            await body()

    clock = None if threads else trio.testing.MockClock(autojump_threshold=0)
    trio.run(bounded, clock=clock)


async def tcp_pair() -> tuple[asocket.socket, asocket.socket]:
    with asocket.socket() as lst:
        await lst.bind(("127.0.0.1", 0))
        lst.listen()
        cli = await asocket.create_connection(lst.getsockname())
        srv, _ = await lst.accept()
    return cli, srv


async def fill(sock: asocket.socket) -> int:
    """Send until not one more byte fits (non-blocking); return the count."""
    saved = sock.gettimeout()
    sock.settimeout(0.0)
    total = 0
    try:
        for size in (65536, 4096, 1):
            while True:
                try:
                    total += await sock.send(b"f" * size)
                except BlockingIOError:
                    break
    finally:
        sock.settimeout(saved)
    return total


async def drain(sock: asocket.socket) -> bytes:
    """Everything the socket holds now (non-blocking reads until EAGAIN or EOF)."""
    saved = sock.gettimeout()
    sock.settimeout(0.0)
    chunks = []
    try:
        while True:
            try:
                data = await sock.recv(1 << 20)
            except BlockingIOError:
                break
            if not data:
                break
            chunks.append(data)
    finally:
        sock.settimeout(saved)
    return b"".join(chunks)


# -- the library is chosen at call time -------------------------------------------------


def test_importing_asocket_imports_no_trio_anyio_or_httpcore() -> None:
    code = (
        "import sys, asocket, asocket.sync\n"
        "bad = {'trio', 'anyio', 'httpcore', 'httpx'} & set(sys.modules)\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_asyncio_without_trio_pays_one_attribute_test() -> None:
    # In a program that never imports trio, RUNNING.checkpoints stays False: asyncio's
    # calls take the engine's plain path. (This test process imported trio: a child.)
    code = (
        "import asyncio, sys, asocket\n"
        "from asocket._waiters.current import RUNNING\n"
        "async def main():\n"
        "    a, b = asocket.socketpair()\n"
        "    with a, b:\n"
        "        await b.sendall(b'x')\n"
        "        assert await a.recv(1) == b'x'\n"
        "asyncio.run(main())\n"
        "assert RUNNING.checkpoints is False and 'trio' not in sys.modules\n"
        "import trio\n"
        "for sock in asocket.socketpair():\n"  # sockets made once trio is imported
        "    sock.close()\n"
        "assert RUNNING.checkpoints is True\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_a_socket_made_outside_trio_works_inside() -> None:
    a, b = asocket.socketpair()

    async def body() -> None:
        await b.sendall(b"ping")
        assert await a.recv(10) == b"ping"

    with a, b:
        run(body)


def test_one_socket_across_two_trio_runs() -> None:
    a, b = asocket.socketpair()

    async def body() -> None:
        await b.sendall(b"x")
        assert await a.recv(1) == b"x"

    with a, b:
        run(body)
        run(body)


# -- modes and deadlines on trio's clock ------------------------------------------------


def test_blocking_recv_waits_for_data() -> None:
    async def body() -> None:
        a, b = asocket.socketpair()
        with a, b:
            async with trio.open_nursery() as nursery:

                async def later() -> None:
                    await trio.sleep(20)
                    await b.sendall(b"late")

                nursery.start_soon(later)
                assert await a.recv(10) == b"late"
                assert trio.current_time() >= 20

    run(body)


def test_nonblocking_mode_raises_at_once() -> None:
    async def body() -> None:
        a, b = asocket.socketpair()
        with a, b:
            a.setblocking(False)
            with pytest.raises(BlockingIOError):
                await a.recv(1)
            await fill(a)
            with pytest.raises(BlockingIOError):
                await a.send(b"x")
            assert trio.current_time() == 0

    run(body)


def test_timeout_mode_on_the_mock_clock() -> None:
    async def body() -> None:
        a, b = asocket.socketpair()
        with a, b:
            a.settimeout(1000.0)  # a thousand virtual seconds: instant under autojump
            start = trio.current_time()
            with pytest.raises(TimeoutError, match=r"^timed out$"):
                await a.recv(1)
            assert trio.current_time() - start >= 1000.0
            await b.sendall(b"ok")
            assert await a.recv(2) == b"ok"  # still usable

    run(body)


def test_sendall_deadline_covers_the_whole_call() -> None:
    async def body() -> None:
        a, b = await tcp_pair()
        with a, b:
            filled = await fill(a)
            a.settimeout(5.0)

            async def reader() -> None:  # frees a little room now and then: never enough
                for _ in range(3):
                    await trio.sleep(1.0)
                    await b.recv(1024)

            start = trio.current_time()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader)
                with pytest.raises(TimeoutError):
                    await a.sendall(b"s" * (filled * 4))
            assert 5.0 <= trio.current_time() - start < 6.0

    run(body)


def test_accept_and_connect_timeouts() -> None:
    async def body() -> None:
        with asocket.socket() as lst:
            await lst.bind(("127.0.0.1", 0))
            lst.listen()
            lst.settimeout(3.0)
            with pytest.raises(TimeoutError):
                await lst.accept()
            cli = await asocket.create_connection(lst.getsockname(), timeout=2.0)
            srv, _ = await lst.accept()
            with cli, srv:
                assert cli.gettimeout() == 2.0
                assert srv.gettimeout() is None

    run(body)


# -- several waiters on one socket ------------------------------------------------------


def test_many_readers_on_one_socket_never_busy() -> None:
    async def body() -> None:
        a, b = asocket.socketpair()
        got: list[bytes] = []
        with a, b:
            async with trio.open_nursery() as nursery:
                for _ in range(20):

                    async def reader() -> None:
                        got.append(await a.recv(1))

                    nursery.start_soon(reader)
                await trio.testing.wait_all_tasks_blocked()
                for i in range(20):
                    await b.sendall(bytes([65 + i]))
                    await trio.sleep(0.01)
        assert sorted(got) == [bytes([65 + i]) for i in range(20)]

    run(body)


def test_reader_and_writer_at_once_on_one_socket() -> None:
    async def body() -> None:
        a, b = await tcp_pair()
        with a, b:
            filled = await fill(a)
            received: list[bytes] = []
            async with trio.open_nursery() as nursery:

                async def reader() -> None:
                    received.append(await a.recv(10))

                async def writer() -> None:
                    await a.sendall(b"w" * 100_000)

                nursery.start_soon(reader)
                nursery.start_soon(writer)
                nursery.start_soon(writer)
                await trio.testing.wait_all_tasks_blocked()
                await b.sendall(b"hi")
                total = 0
                while total < filled + 200_000:
                    total += len(await b.recv(1 << 20))
            assert received == [b"hi"]

    run(body)


def test_leader_cancelled_a_follower_takes_over() -> None:
    async def body() -> None:
        a, b = asocket.socketpair()
        got: list[bytes] = []
        with a, b:
            first = trio.CancelScope()
            async with trio.open_nursery() as nursery:

                async def leader() -> None:
                    with first:
                        await a.recv(1)

                async def follower() -> None:
                    got.append(await a.recv(1))

                nursery.start_soon(leader)
                await trio.testing.wait_all_tasks_blocked()
                nursery.start_soon(follower)
                await trio.testing.wait_all_tasks_blocked()
                first.cancel()
                await trio.testing.wait_all_tasks_blocked()
                await b.sendall(b"z")
        assert got == [b"z"]

    run(body)


# -- close wakes every waiter with EBADF ------------------------------------------------


def test_close_wakes_every_waiter_with_ebadf() -> None:
    async def body() -> None:
        a, b = await tcp_pair()
        errors: list[int | None] = []
        with b:
            await fill(a)

            async def call(coro: Callable[[], Awaitable[Any]]) -> None:
                try:
                    await coro()
                except OSError as exc:
                    errors.append(exc.errno)

            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(call, lambda: a.recv(1))
                for _ in range(3):
                    nursery.start_soon(call, lambda: a.sendall(b"x" * 1000))
                await trio.testing.wait_all_tasks_blocked()
                a.close()
            assert errors == [errno.EBADF] * 8
            with pytest.raises(OSError) as info:
                await a.recv(1)
            assert info.value.errno == errno.EBADF

    run(body)


def test_a_reused_fd_number_gets_no_stale_wakeup() -> None:
    async def body() -> None:
        a, b = asocket.socketpair()
        fd = a.fileno()
        async with trio.open_nursery() as nursery:

            async def waiter() -> None:
                with pytest.raises(OSError):
                    await a.recv(1)

            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            a.close()
        c, d = asocket.socketpair()
        with b, c, d:
            assert fd in (c.fileno(), d.fileno())
            c.settimeout(1.0)
            with pytest.raises(TimeoutError):
                await c.recv(1)
            await d.sendall(b"k")
            assert await c.recv(1) == b"k"

    run(body)


# -- cancellation loses nothing ---------------------------------------------------------


def test_cancelled_recv_consumes_nothing() -> None:
    async def body() -> None:
        a, b = asocket.socketpair()
        with a, b:
            with trio.move_on_after(5):
                await a.recv(10)
            await b.sendall(b"kept")
            with trio.CancelScope() as scope:
                scope.cancel()
                await a.recv(10)  # cancelled before its syscall
            assert await a.recv(10) == b"kept"

    run(body)


def test_cancelled_accept_consumes_nothing() -> None:
    async def body() -> None:
        with asocket.socket() as lst:
            await lst.bind(("127.0.0.1", 0))
            lst.listen()
            with trio.move_on_after(5):
                await lst.accept()
            cli = asocket.socket()
            await cli.connect(lst.getsockname())
            with trio.CancelScope() as scope:
                scope.cancel()
                await lst.accept()
            srv, addr = await lst.accept()
            with cli, srv:
                assert addr == cli.getsockname()

    run(body)


def test_cancelled_sendall_sends_nothing_more() -> None:
    async def body() -> None:
        a, b = await tcp_pair()
        with a, b:
            filled = await fill(a)
            payload = bytes(range(256)) * 4096  # 1 MiB, recognisable
            with trio.move_on_after(5):
                async with trio.open_nursery() as nursery:

                    async def trickle() -> None:  # lets part of it through
                        for _ in range(3):
                            await trio.sleep(1)
                            await b.recv(65536)

                    nursery.start_soon(trickle)
                    await a.sendall(payload)
            received = await drain(b)
            await trio.sleep(10)  # nothing more may come after the cancel
            received += await drain(b)
            await a.sendall(b"END")
            tail = b""
            while not tail.endswith(b"END"):
                tail += await b.recv(65536)
            # After the fill: a prefix of the payload, then exactly END.
            assert tail.endswith(b"END")
            after_fill = (received + tail[:-3]).lstrip(b"f")
            assert len(after_fill) < len(payload)
            assert payload.startswith(after_fill)
            assert filled > 0

    run(body)


# -- trio's checkpoint rules -------------------------------------------------------------


def test_every_awaitable_call_is_a_checkpoint() -> None:
    async def body() -> None:
        a, b = await tcp_pair()
        with a, b:
            await b.sendall(b"abc")
            await trio.testing.wait_all_tasks_blocked()
            for call in (
                lambda: a.recv(1),  # completes at once
                lambda: a.recv_into(bytearray(1)),
                lambda: a.send(b"x"),
                lambda: a.sendall(b"y"),
            ):
                with trio.testing.assert_checkpoints():
                    await call()
            a.setblocking(False)
            await drain(a)
            with trio.testing.assert_checkpoints(), pytest.raises(BlockingIOError):
                await a.recv(1)  # fails at once: still a checkpoint
            with asocket.socket() as lst:
                await lst.bind(("127.0.0.1", 0))
                lst.listen()
                c = asocket.socket()
                with trio.testing.assert_checkpoints():
                    await c.connect(lst.getsockname())
                await trio.sleep(0.1)
                with trio.testing.assert_checkpoints():
                    s, _ = await lst.accept()
                c.close()
                s.close()
            with trio.testing.assert_checkpoints():
                await asocket.getaddrinfo("127.0.0.1", 80)

    run(body)


def test_reads_after_a_read_that_waited_are_checkpoints_too() -> None:
    """After a read that had to wait, the read hint makes the next plain read wait
    first when nothing is there (the wait is its checkpoint), or try at once when the
    probe sees data (then a cancel point and a schedule point); either way a checkpoint,
    and a cancelled one consumes nothing."""

    async def body() -> None:
        a, b = asocket.socketpair()
        with a, b:
            for _ in range(3):
                async with trio.open_nursery() as nursery:

                    async def answer() -> None:
                        await trio.testing.wait_all_tasks_blocked()
                        await b.send(b"r")

                    nursery.start_soon(answer)
                    with trio.testing.assert_checkpoints():
                        assert await a.recv(10) == b"r"  # waited first (after the first)
            with trio.CancelScope() as scope:  # would wait first: cancelled in the wait
                scope.cancel()
                await a.recv(10)
            assert scope.cancelled_caught
            await b.send(b"data")
            with trio.testing.assert_checkpoints():
                assert await a.recv(2) == b"da"  # the probe saw data: tried at once
            with trio.testing.assert_checkpoints():
                assert await a.recv_into(bytearray(2)) == 2
            await b.send(b"more")
            with trio.CancelScope() as scope:  # cancelled before it tries: nothing consumed
                scope.cancel()
                await a.recv(10)
            assert scope.cancelled_caught
            assert await a.recv(10) == b"more"

    run(body)


def test_a_call_that_fails_at_once_is_a_checkpoint() -> None:
    """The inline first attempt of recv, recv_into, send and sendall keeps trio's rule when
    the syscall raises at once (a reset, a broken pipe, a full buffer in non-blocking
    mode): a cancel point before it and a schedule point before the error propagates."""

    async def body() -> None:
        a, b = await tcp_pair()
        with a:
            b.setsockopt(asocket.SOL_SOCKET, asocket.SO_LINGER, struct.pack("ii", 1, 0))
            b.close()  # a reset, on loopback at once
            with trio.testing.assert_checkpoints(), pytest.raises(ConnectionResetError):
                await a.recv(10)
            with trio.testing.assert_checkpoints():
                assert await a.recv_into(bytearray(4)) == 0  # the end, after the reset
            for call in (lambda: a.send(b"x"), lambda: a.sendall(b"x")):
                with trio.testing.assert_checkpoints(), pytest.raises(BrokenPipeError):
                    await call()
        a, b = asocket.socketpair()
        with a, b:
            await fill(a)
            a.setblocking(False)
            for call in (lambda: a.send(b"x"), lambda: a.sendall(b"x")):
                with trio.testing.assert_checkpoints(), pytest.raises(BlockingIOError):
                    await call()
            with trio.CancelScope() as scope:  # cancelled before its syscall: sends nothing
                scope.cancel()
                await a.send(b"x")
            assert scope.cancelled_caught

    run(body)


def test_each_call_finds_the_waiter_of_what_runs_it() -> None:
    """current() keeps the last call's waiter: a call under another trio run, or under
    asyncio between runs, gets the waiter of what runs it, and outside both the stdlib's
    asyncio error."""
    import asyncio

    from asocket._waiters import trio as trio_waiter
    from asocket._waiters.current import current

    seen: list[object] = []

    async def under_trio() -> None:
        waiter = current()
        assert waiter is current() is trio_waiter.CURRENT.get()
        seen.append(waiter)

    async def under_asyncio() -> None:
        waiter = current()
        assert waiter.loop is asyncio.get_running_loop()  # type: ignore[attr-defined]
        seen.append(waiter)

    trio.run(under_trio)
    asyncio.run(under_asyncio())
    trio.run(under_trio)
    trio.run(under_trio)
    assert len({id(waiter) for waiter in seen}) == 4  # one waiter per run and per loop
    with pytest.raises(RuntimeError, match="no running event loop"):
        current()


def test_threads_running_loops_at_once_each_get_their_own_waiter() -> None:
    """Threads each running a loop (or a trio run) at once, calling all the time: no call
    gets another thread's waiter (the last call's waiter and its owner are read as one),
    and the loops' waiters are made, and closed loops' let go, one thread at a time."""
    import asyncio

    from asocket._waiters import trio as trio_waiter
    from asocket._waiters.current import current, waiter_for

    wrong: list[str] = []

    together = threading.Barrier(2, timeout=60)  # the asyncio threads' first calls at once

    async def asyncio_body() -> None:
        loop = asyncio.get_running_loop()
        together.wait()
        for _ in range(20_000):
            if current().loop is not loop:  # type: ignore[attr-defined]
                wrong.append("asyncio")
                return

    async def trio_body() -> None:
        mine = current()
        for _ in range(20_000):
            if current() is not mine or mine is not trio_waiter.CURRENT.get():
                wrong.append("trio")
                return

    threads = [
        threading.Thread(target=lambda: asyncio.run(asyncio_body())),
        threading.Thread(target=lambda: asyncio.run(asyncio_body())),
        threading.Thread(target=lambda: trio.run(trio_body)),
    ]
    closed = [asyncio.new_event_loop() for _ in range(200)]
    for loop in closed:  # closed loops' waiters, which a new loop's first call lets go
        waiter_for(loop)
        loop.close()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        sys.setswitchinterval(interval)
    assert not any(thread.is_alive() for thread in threads)
    assert wrong == []


def test_every_awaitable_file_call_is_a_checkpoint() -> None:
    """Buffered files too: a call served from the buffer still checks for cancellation
    first (nothing consumed) and yields after (docs/trio.md, "Checkpoints")."""

    async def body() -> None:
        a, b = asocket.socketpair()
        with a, b:
            await b.sendall(b"one\ntwo\nthree\nfour\nfive\n" + b"x" * 40)
            reader = a.makefile("rb")
            writer = b.makefile("wb")
            assert await reader.readline() == b"one\n"  # the rest is buffered now
            for call in (
                lambda: reader.readline(),
                lambda: reader.read(2),
                lambda: reader.read1(1),
                lambda: reader.readinto(bytearray(1)),
                lambda: reader.readinto1(bytearray(1)),
                lambda: reader.readexactly(1),
                lambda: reader.readuntil(b"\n"),
                lambda: reader.peek(1),
                lambda: reader.__anext__(),
                lambda: writer.write(b"w"),  # buffered only
                lambda: writer.writelines([b"w"]),
                lambda: writer.flush(),
            ):
                with trio.testing.assert_checkpoints():
                    await call()
            with trio.CancelScope() as scope:  # a cancelled call consumes nothing
                scope.cancel()
                await reader.readline()
            assert scope.cancelled_caught
            assert await reader.readexactly(4) == b"xxxx"
            with trio.testing.assert_checkpoints():
                await writer.aclose()
            reader.close()

    run(body)


def test_a_cancelled_call_raises_before_its_syscall() -> None:
    async def body() -> None:
        a, b = asocket.socketpair()
        with a, b:
            with trio.CancelScope() as scope:
                scope.cancel()
                await a.sendall(b"never")
            assert scope.cancelled_caught
            b.setblocking(False)
            with pytest.raises(BlockingIOError):
                await b.recv(10)

    run(body)


def test_a_cancel_after_the_syscall_loses_no_data() -> None:
    """The schedule point after a completed syscall is shielded: the data is returned and
    the cancellation lands at the next checkpoint."""

    async def body() -> None:
        a, b = asocket.socketpair()
        got: list[bytes] = []
        with a, b:
            await b.sendall(b"data")
            go = trio.Event()
            async with trio.open_nursery() as nursery:
                with trio.CancelScope() as scope:

                    async def canceller() -> None:
                        await go.wait()
                        scope.cancel()  # runs while the recv below yields, after its syscall

                    nursery.start_soon(canceller)
                    await trio.testing.wait_all_tasks_blocked()
                    go.set()
                    got.append(await a.recv(10))
                    await trio.sleep(0)
                    got.append(b"not reached")
            assert scope.cancelled_caught
            assert got == [b"data"]

    run(body)


# -- resolution, connections ----------------------------------------------------------------


def test_resolution_in_a_thread_abandoned_on_cancel() -> None:
    from asocket._waiters.trio import current

    release = threading.Event()

    def slow_lookup() -> str:
        release.wait(10)
        return "done"

    async def body() -> None:
        waiter = current()
        assert waiter is not None
        with trio.move_on_after(0.05) as scope:
            await waiter.to_thread(slow_lookup)
        assert scope.cancelled_caught
        with pytest.raises(TimeoutError):
            await waiter.to_thread(slow_lookup, deadline=trio.current_time() + 0.05)
        release.set()
        assert await waiter.to_thread(slow_lookup) == "done"
        infos = await asocket.getaddrinfo("localhost", 80, asocket.AF_INET, asocket.SOCK_STREAM)
        assert infos[0][4] == ("127.0.0.1", 80)

    run(body, threads=True)


def test_create_connection_by_name_and_refused() -> None:
    async def body() -> None:
        with asocket.socket() as lst:
            await lst.bind(("127.0.0.1", 0))
            lst.listen()
            port = lst.getsockname()[1]
            cli = await asocket.create_connection(("localhost", port), timeout=5)
            srv, _ = await lst.accept()
            with cli, srv:
                await cli.sendall(b"hi")
                assert await srv.recv(2) == b"hi"
        with pytest.raises(ConnectionRefusedError):
            await asocket.create_connection(("127.0.0.1", port), timeout=5)

    run(body, threads=True)


# -- servers ----------------------------------------------------------------------------------


async def echo(sock: asocket.socket, address: Any) -> None:
    while data := await sock.recv(1024):
        await sock.sendall(data)


async def roundtrip(port: int, payload: bytes = b"ping") -> bytes:
    with await asocket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        await sock.sendall(payload)
        return await sock.recv(1024)


def test_serve_tcp_under_trio() -> None:
    async def body() -> None:
        async with await asocket.serve_tcp(echo, "127.0.0.1", 0) as server:
            assert isinstance(server, asocket.Server)
            port = server.sockets[0].getsockname()[1]
            async with trio.open_nursery() as nursery:
                for i in range(10):
                    nursery.start_soon(roundtrip, port, b"%d" % i)
            assert await roundtrip(port) == b"ping"
        assert server.active_connections == 0
        assert server.sockets[0].fileno() == -1
        with pytest.raises(ConnectionRefusedError):
            await roundtrip(port)

    run(body)


def test_serve_unix_under_trio(tmp_path: Any) -> None:
    path = str(tmp_path / "echo.sock")

    async def body() -> None:
        async with await asocket.serve_unix(echo, path):
            with asocket.socket(asocket.AF_UNIX) as sock:
                await sock.connect(path)
                await sock.sendall(b"unix")
                assert await sock.recv(10) == b"unix"

    run(body)
    assert not (tmp_path / "echo.sock").exists()


def test_max_connections_under_trio() -> None:
    async def body() -> None:
        release = trio.Event()
        running: list[int] = []

        async def handler(sock: asocket.socket, address: Any) -> None:
            running.append(1)
            await release.wait()
            await sock.sendall(b"done")

        async with await asocket.serve_tcp(handler, "127.0.0.1", 0, max_connections=1) as srv:
            port = srv.sockets[0].getsockname()[1]
            a = await asocket.create_connection(("127.0.0.1", port))
            b = await asocket.create_connection(("127.0.0.1", port))  # in the backlog
            with a, b:
                await trio.sleep(1)
                assert srv.active_connections == 1 and len(running) == 1
                release.set()
                assert await a.recv(4) == b"done"
                assert await b.recv(4) == b"done"
                assert len(running) == 2

    run(body)


def test_shutdown_grace_then_cancel_and_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    ended: list[str] = []

    async def body() -> None:
        async def handler(sock: asocket.socket, address: Any) -> None:
            data = await sock.recv(10)
            if data == b"fail":
                raise ValueError("handler failed")
            try:
                await trio.sleep_forever()
            finally:
                ended.append("cancelled")

        server = await asocket.serve_tcp(handler, "127.0.0.1", 0, grace_period=3.0)
        port = server.sockets[0].getsockname()[1]
        failing = await asocket.create_connection(("127.0.0.1", port))
        await failing.sendall(b"fail")
        assert await failing.recv(10) == b""  # the server closed it
        failing.close()
        slow = await asocket.create_connection(("127.0.0.1", port))
        await slow.sendall(b"wait")
        await trio.sleep(1)
        start = trio.current_time()
        server.close()
        await server.wait_closed()
        assert trio.current_time() - start >= 3.0  # the grace period, then cancelled
        assert ended == ["cancelled"]
        assert await slow.recv(10) == b""
        slow.close()

    with caplog.at_level(logging.ERROR, logger="asocket"):
        run(body)
    records = [r for r in caplog.records if "handler for" in r.getMessage()]
    assert len(records) == 1 and records[0].exc_info is not None


def test_close_clients_and_serve_forever_cancelled() -> None:
    async def body() -> None:
        server = await asocket.serve_tcp(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = await asocket.create_connection(("127.0.0.1", port))
        assert await roundtrip(port) == b"ping"
        await client.sendall(b"x")
        assert await client.recv(1) == b"x"
        server.close_clients()
        assert await client.recv(1) == b""  # its handler was cancelled: connection closed
        client.close()
        with trio.move_on_after(5):
            await server.serve_forever()
        assert server.sockets[0].fileno() == -1

    run(body)


def test_the_run_ending_cancels_the_servers_tasks() -> None:
    ended: list[str] = []
    clients: list[asocket.socket] = []

    async def body() -> None:
        async def handler(sock: asocket.socket, address: Any) -> None:
            try:
                await sock.recv(10)
            finally:
                ended.append("handler")

        server = await asocket.serve_tcp(handler, "127.0.0.1", 0)
        clients.append(await asocket.create_connection(server.sockets[0].getsockname()))
        await trio.sleep(1)
        # main returns: trio cancels the server's system task, its handler with it

    run(body)
    assert ended == ["handler"]
    clients[0].close()


def test_the_docs_trio_program() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "trio.md").read_text()
    program = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert "trio.run(main)" in program
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", program], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "b'hello'\n"


needs_tls = pytest.mark.skipif(
    not hasattr(asocket, "wrap_socket"), reason="asocket's TLS (asocket.wrap_socket) not here"
)


@needs_tls
def test_tls_under_trio(caplog: pytest.LogCaptureFixture) -> None:
    trustme = pytest.importorskip("trustme")
    import ssl

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def body() -> None:
        async def handler(sock: Any, address: Any) -> None:
            await sock.sendall(b"tls:" + await sock.recv(10))

        server = await asocket.serve_tcp(handler, "127.0.0.1", 0, ssl=server_ctx)  # type: ignore[call-overload, unused-ignore]
        async with server:
            port = server.sockets[0].getsockname()[1]
            sock = await asocket.create_connection(  # type: ignore[call-arg, unused-ignore]
                ("127.0.0.1", port), timeout=5, ssl=client_ctx
            )
            with sock:
                await sock.sendall(b"hi")
                assert await sock.recv(10) == b"tls:hi"
            with pytest.raises(ssl.SSLError):  # a client that does not trust the server
                await asocket.create_connection(  # type: ignore[call-arg, unused-ignore]
                    ("127.0.0.1", port), timeout=5, ssl=ssl.create_default_context()
                )
            sock = await asocket.create_connection(  # the server goes on
                ("127.0.0.1", port), timeout=5, ssl=client_ctx
            )
            with sock:
                await sock.sendall(b"again")
                assert await sock.recv(10) == b"tls:again"

    with caplog.at_level(logging.WARNING, logger="asocket"):
        run(body)
    assert any("TLS handshake" in r.getMessage() for r in caplog.records)


def test_the_trio_benchmark_runs() -> None:
    """benchmarks/bench_trio.py with tiny sizes: every row prints a figure (none asserted)."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_trio.py"
    done = subprocess.run(
        [sys.executable, str(script), "--smoke"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for row in ("trio.socket", "asocket under trio", "(floor)", "asocket.httpcore.AsyncBackend"):
        assert row in done.stdout
