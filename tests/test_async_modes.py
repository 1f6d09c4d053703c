"""The async face's timeout modes, as docs/modes.md states them.

``None`` waits, ``0.0`` raises ``BlockingIOError`` at once, ``t > 0`` raises
``TimeoutError('timed out')`` after ``t`` (for ``sendall``: ``t`` for the whole
call). Every test runs on each backend: the loop matrix and trio (see ``conftest.py``).
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterator

import anyio
import pytest
from _async_helpers import (
    CHUNK,
    Tasks,
    bounded,
    close_all,
    fill,
    listener,
    pending_connect_target,
    small_buffers,
)

import asocket

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _restore_default_timeout() -> Iterator[None]:
    saved = asocket.getdefaulttimeout()
    stdlib_saved = socket.getdefaulttimeout()
    try:
        yield
    finally:
        asocket.setdefaulttimeout(saved)
        socket.setdefaulttimeout(stdlib_saved)


def assert_timed_out(exc: BaseException) -> None:
    assert isinstance(exc, TimeoutError)
    assert isinstance(exc, socket.timeout)
    assert str(exc) == "timed out"


# -- the mode setters and getters -----------------------------------------------


async def test_new_socket_blocking_by_default() -> None:
    assert asocket.getdefaulttimeout() is None
    with asocket.socket() as s:
        assert s.gettimeout() is None
        assert s.getblocking() is True
        assert s.timeout is None


async def test_settimeout_modes() -> None:
    with asocket.socket() as s:
        s.settimeout(0.0)
        assert s.gettimeout() == 0.0
        assert s.getblocking() is False
        s.settimeout(2.5)
        assert s.gettimeout() == 2.5
        assert s.getblocking() is True
        s.settimeout(3)  # an int is accepted and stored as a float, as the stdlib
        assert s.gettimeout() == 3.0
        assert isinstance(s.gettimeout(), float)
        s.settimeout(None)
        assert s.gettimeout() is None
        assert s.getblocking() is True


async def test_setblocking() -> None:
    with asocket.socket() as s:
        s.settimeout(1.5)
        s.setblocking(False)
        assert s.gettimeout() == 0.0
        assert s.getblocking() is False
        s.setblocking(True)
        assert s.gettimeout() is None
        assert s.getblocking() is True


async def test_descriptor_always_nonblocking() -> None:
    """The async face keeps O_NONBLOCK in every mode; getblocking() reports the mode."""
    with asocket.socket() as s:
        for mode in (None, 0.0, 1.0, None):
            s.settimeout(mode)
            assert os.get_blocking(s.fileno()) is False


async def test_settimeout_bad_values_as_stdlib() -> None:
    with asocket.socket() as s, socket.socket() as ref:
        for bad in (-1, -0.5, float("nan"), "1", b"1", [1]):
            try:
                ref.settimeout(bad)  # type: ignore[arg-type]
            except Exception as exc:
                expected = exc
            else:  # pragma: no cover - the stdlib refuses each of these
                raise AssertionError(bad)
            with pytest.raises(type(expected)) as info:
                s.settimeout(bad)  # type: ignore[arg-type]
            assert str(info.value) == str(expected)
            assert s.gettimeout() is None  # unchanged


async def test_default_timeout_applies_to_new_sockets() -> None:
    stdlib_default = socket.getdefaulttimeout()
    asocket.setdefaulttimeout(1.25)
    assert asocket.getdefaulttimeout() == 1.25
    assert socket.getdefaulttimeout() == stdlib_default  # asocket's own default
    a, b = asocket.socketpair()
    with asocket.socket() as s, a, b:
        assert s.gettimeout() == 1.25
        assert a.gettimeout() == b.gettimeout() == 1.25
    asocket.setdefaulttimeout(0.0)
    with asocket.socket() as s:
        assert s.gettimeout() == 0.0
        assert s.getblocking() is False
    asocket.setdefaulttimeout(None)
    with asocket.socket() as s:
        assert s.gettimeout() is None


async def test_setdefaulttimeout_bad_values() -> None:
    with pytest.raises(ValueError):
        asocket.setdefaulttimeout(-1)
    with pytest.raises(TypeError):
        asocket.setdefaulttimeout("1")  # type: ignore[arg-type]
    assert asocket.getdefaulttimeout() is None


@pytest.mark.parametrize(
    ("default", "listener_timeout"),
    [(None, None), (None, 0.0), (None, 2.0), (1.5, None), (1.5, 0.0), (0.0, 2.0)],
)
async def test_accepted_socket_gets_module_default(
    default: float | None, listener_timeout: float | None
) -> None:
    """As the stdlib: the accepted socket's timeout is the module default, whatever the
    listener's mode."""
    asocket.setdefaulttimeout(default)
    lst = await listener()
    with lst, asocket.socket() as cli:
        lst.settimeout(listener_timeout)
        cli.settimeout(None)
        await bounded(cli.connect(lst.getsockname()))
        if listener_timeout == 0.0:
            for _ in range(500):
                try:
                    conn, _ = await lst.accept()
                    break
                except BlockingIOError:
                    await anyio.sleep(0.01)
            else:  # pragma: no cover
                raise AssertionError("connection never arrived")
        else:
            conn, _ = await bounded(lst.accept())
        with conn:
            assert conn.gettimeout() == default
            assert conn.getblocking() is (default != 0.0)
            assert os.get_blocking(conn.fileno()) is False
            assert isinstance(conn, asocket.socket)


async def test_closed_socket_raises_ebadf() -> None:
    a, b = asocket.socketpair()
    b.close()
    a.close()
    a.close()  # idempotent
    assert a.fileno() == -1
    with pytest.raises(OSError) as info:
        await a.recv(1)
    assert info.value.errno == errno.EBADF
    with pytest.raises(OSError) as info:
        await a.sendall(b"x")
    assert info.value.errno == errno.EBADF
    with pytest.raises(OSError) as info:
        a.settimeout(1.0)
    assert info.value.errno == errno.EBADF


# -- non-blocking mode: BlockingIOError at once ------------------------------------


async def test_nonblocking_recv_raises_at_once() -> None:
    a, b = asocket.socketpair()
    with a, b:
        b.setblocking(False)
        t0 = time.monotonic()
        with pytest.raises(BlockingIOError) as info:
            await b.recv(10)
        assert info.value.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
        with pytest.raises(BlockingIOError):
            await b.recv_into(bytearray(10))
        assert time.monotonic() - t0 < 1.0
        await a.sendall(b"ready")
        for _ in range(200):  # the data is there almost at once; never wait for it
            try:
                assert await b.recv(10) == b"ready"
                break
            except BlockingIOError:
                await anyio.sleep(0.005)
        else:  # pragma: no cover
            raise AssertionError("data never arrived")


async def test_nonblocking_recvfrom_raises_at_once() -> None:
    with asocket.socket(asocket.AF_INET, asocket.SOCK_DGRAM) as s:
        await s.bind(("127.0.0.1", 0))
        s.settimeout(0.0)
        with pytest.raises(BlockingIOError):
            await s.recvfrom(10)
        with pytest.raises(BlockingIOError):
            await s.recvfrom_into(bytearray(10))


async def test_nonblocking_send_full_buffer_raises() -> None:
    a, b = asocket.socketpair()
    with a, b:
        small_buffers(a, b)
        sent = await fill(a)
        assert sent > 0
        a.setblocking(False)
        t0 = time.monotonic()
        with pytest.raises(BlockingIOError) as info:
            await a.send(b"x" * CHUNK)
        assert info.value.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
        with pytest.raises(BlockingIOError):
            await a.sendall(b"x" * CHUNK)
        assert time.monotonic() - t0 < 1.0


async def test_nonblocking_accept_raises_at_once() -> None:
    with await listener() as lst:
        lst.setblocking(False)
        t0 = time.monotonic()
        with pytest.raises(BlockingIOError) as info:
            await lst.accept()
        assert info.value.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
        assert time.monotonic() - t0 < 1.0


async def test_nonblocking_connect_einprogress() -> None:
    with await listener() as lst, asocket.socket() as cli:
        cli.setblocking(False)
        with pytest.raises(BlockingIOError) as info:
            await cli.connect(lst.getsockname())
        assert info.value.errno == errno.EINPROGRESS
        # The connection completes in the background, as with the stdlib.
        conn, _ = await bounded(lst.accept())
        with conn:
            for _ in range(200):
                if cli.getsockopt(asocket.SOL_SOCKET, asocket.SO_ERROR) == 0:
                    try:
                        cli.getpeername()
                        break
                    except OSError:
                        pass
                await anyio.sleep(0.005)
            assert cli.getpeername() == lst.getsockname()


async def test_nonblocking_connect_ex_einprogress() -> None:
    with await listener() as lst, asocket.socket() as cli:
        cli.setblocking(False)
        assert await cli.connect_ex(lst.getsockname()) == errno.EINPROGRESS
        conn, _ = await bounded(lst.accept())
        conn.close()


# -- timeout mode: TimeoutError('timed out') after t -------------------------------


async def test_timeout_recv() -> None:
    a, b = asocket.socketpair()
    with a, b:
        b.settimeout(0.2)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            await bounded(b.recv(10))
        elapsed = time.monotonic() - t0
        assert_timed_out(info.value)
        assert 0.1 <= elapsed < 3.0
        # The socket is still usable, and data within the timeout is returned.
        await a.sendall(b"late")
        assert await bounded(b.recv(10)) == b"late"


async def test_timeout_recv_into() -> None:
    a, b = asocket.socketpair()
    with a, b:
        b.settimeout(0.1)
        with pytest.raises(TimeoutError) as info:
            await bounded(b.recv_into(bytearray(4)))
        assert_timed_out(info.value)


async def test_timeout_data_arrives_in_time() -> None:
    a, b = asocket.socketpair()
    with a, b:
        b.settimeout(3.0)

        async def later() -> None:
            await anyio.sleep(0.1)
            await a.sendall(b"in time")

        async with anyio.create_task_group() as tg:
            tg.start_soon(later)
            assert await bounded(b.recv(10)) == b"in time"


async def test_timeout_accept() -> None:
    with await listener() as lst:
        lst.settimeout(0.2)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            await bounded(lst.accept())
        assert_timed_out(info.value)
        assert 0.1 <= time.monotonic() - t0 < 3.0
        # Still usable.
        with asocket.socket() as cli:
            await bounded(cli.connect(lst.getsockname()))
            conn, _ = await bounded(lst.accept())
            conn.close()


async def test_timeout_recvfrom() -> None:
    with asocket.socket(asocket.AF_INET, asocket.SOCK_DGRAM) as s:
        await s.bind(("127.0.0.1", 0))
        s.settimeout(0.2)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            await bounded(s.recvfrom(10))
        assert_timed_out(info.value)
        assert 0.1 <= time.monotonic() - t0 < 3.0
        with pytest.raises(TimeoutError) as info:
            await bounded(s.recvfrom_into(bytearray(10)))
        assert_timed_out(info.value)


async def test_timeout_send_full_buffer() -> None:
    a, b = asocket.socketpair()
    with a, b:
        small_buffers(a, b)
        await fill(a)
        a.settimeout(0.2)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            await bounded(a.send(b"x" * CHUNK))
        assert_timed_out(info.value)
        assert 0.1 <= time.monotonic() - t0 < 3.0


async def test_timeout_sendall_full_buffer() -> None:
    a, b = asocket.socketpair()
    with a, b:
        small_buffers(a, b)
        await fill(a)
        a.settimeout(0.2)
        with pytest.raises(TimeoutError) as info:
            await bounded(a.sendall(b"x" * CHUNK))
        assert_timed_out(info.value)


async def test_timeout_connect() -> None:
    lst, fillers = pending_connect_target()
    try:
        with asocket.socket() as cli:
            cli.settimeout(0.2)
            t0 = time.monotonic()
            with pytest.raises(TimeoutError) as info:
                await bounded(cli.connect(lst.getsockname()))
            assert_timed_out(info.value)
            assert 0.1 <= time.monotonic() - t0 < 3.0
        with asocket.socket() as cli:
            cli.settimeout(0.2)
            # The stdlib's connect_ex reports a timeout as EWOULDBLOCK.
            err = await bounded(cli.connect_ex(lst.getsockname()))
            assert err == errno.EWOULDBLOCK
    finally:
        close_all(lst, *fillers)


async def test_sendall_deadline_covers_whole_call() -> None:
    """A slow reader takes each chunk well within ``t`` but the whole transfer takes
    much longer than ``t``: sendall raises TimeoutError near ``t``."""
    a, b = asocket.socketpair()
    with a, b:
        small_buffers(a, b)
        received = 0

        async def slow_reader() -> None:
            nonlocal received
            while True:
                data = await b.recv(16384)
                if not data:
                    return
                received += len(data)
                await anyio.sleep(0.01)

        async with anyio.create_task_group() as tg:
            tg.start_soon(slow_reader)
            a.settimeout(0.3)
            payload = b"s" * (8 * 1024 * 1024)  # >= 5 s at the reader's pace
            t0 = time.monotonic()
            with pytest.raises(TimeoutError) as info:
                await bounded(a.sendall(payload), 10)
            elapsed = time.monotonic() - t0
            assert_timed_out(info.value)
            assert elapsed < 3.0, elapsed
            await anyio.sleep(0.05)
            assert 0 < received < len(payload)  # it made progress, chunk by chunk
            tg.cancel_scope.cancel()


async def test_timeout_changed_between_calls() -> None:
    """Each call takes the mode in force when it starts."""
    a, b = asocket.socketpair()
    with a, b:
        b.settimeout(0.1)
        with pytest.raises(TimeoutError):
            await bounded(b.recv(1))
        b.setblocking(False)
        with pytest.raises(BlockingIOError):
            await b.recv(1)
        b.setblocking(True)
        async with Tasks() as tasks:
            task = await tasks.start(b.recv(1), 0.3)  # blocking: no timeout
            await a.sendall(b"z")
            assert await task.join() == b"z"


async def test_timeout_recv_with_flags_and_recvmsg() -> None:
    """Calls that have no sock_* twin on completion loops (flags, recvmsg) keep the
    same timeout semantics."""
    a, b = asocket.socketpair()
    with a, b:
        b.settimeout(0.1)
        for call in (
            lambda: b.recv(10, asocket.MSG_PEEK),
            lambda: b.recvmsg(10),
            lambda: b.recvmsg_into([bytearray(10)]),
        ):
            with pytest.raises(TimeoutError) as info:
                await bounded(call())
            assert_timed_out(info.value)
        b.setblocking(False)
        with pytest.raises(BlockingIOError):
            await b.recvmsg(10)
        with pytest.raises(BlockingIOError):
            await b.recv(10, asocket.MSG_PEEK)


# -- many deadlines at once: each wait times out at its own, never before -------------


async def test_concurrent_timeouts_each_at_its_own_deadline() -> None:
    """Waits with different timeouts, started in no order, each time out at their own
    deadline, none before it, in deadline order; the others' data still arrives."""
    pairs = [asocket.socketpair() for _ in range(4)]
    timeouts = [0.4, 0.1, 5.0, 0.25]  # the third gets its data instead
    ended: list[tuple[int, float]] = []
    try:
        for (_, b), timeout in zip(pairs, timeouts, strict=True):
            b.settimeout(timeout)

        async def one(i: int) -> None:
            t0 = time.monotonic()
            with pytest.raises(TimeoutError) as info:
                await pairs[i][1].recv(10)
            ended.append((i, time.monotonic() - t0))
            assert_timed_out(info.value)

        async def fed() -> None:
            assert await pairs[2][1].recv(10) == b"data"
            ended.append((2, 0.0))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                for i in (0, 1, 3):
                    tg.start_soon(one, i)
                tg.start_soon(fed)
                await anyio.sleep(0.6)
                await pairs[2][0].sendall(b"data")
        assert [i for i, _ in ended] == [1, 3, 0, 2]
        for i, elapsed in ended[:3]:
            assert elapsed >= timeouts[i] - 0.002, (i, elapsed)  # (clock resolution)
    finally:
        close_all(*(s for pair in pairs for s in pair))


@pytest.mark.parametrize("first", ["waiting", "cancelled"])
async def test_a_deadline_beside_another_wait(first: str) -> None:
    """A wait's deadline beside another wait, still waiting with a later deadline or
    cancelled with an earlier one: it times out at its own deadline, not before; the
    other wait goes on and returns its data, or the cancelled one consumed nothing."""
    waiting = first == "waiting"
    a, b = asocket.socketpair()
    c, d = asocket.socketpair()
    with a, b, c, d:
        b.settimeout(5.0 if waiting else 0.2)
        d.settimeout(0.1 if waiting else 0.4)
        async with Tasks() as tasks:
            other = await tasks.start(b.recv(10), 0.05)
            t0 = time.monotonic()
            if not waiting:
                other.cancel()
                await other.wait()
            with pytest.raises(TimeoutError) as info:
                await bounded(d.recv(10))
            assert_timed_out(info.value)
            assert d.gettimeout() - 0.002 <= time.monotonic() - t0 < 3.0  # type: ignore[operator]
            await a.sendall(b"data")
            if waiting:
                assert await other.join() == b"data"
        if not waiting:
            assert await bounded(b.recv(10)) == b"data"


async def test_an_error_after_a_wait_has_no_context() -> None:
    """The ``BlockingIOError`` of the attempt before a wait is not the context of what
    the call raises after it (the stdlib's C calls chain nothing either)."""
    a, b = asocket.socketpair()
    with a, b, await listener() as lst:
        b.settimeout(0.05)
        lst.settimeout(0.05)
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "recv": lambda: b.recv(10),
            "recv_into": lambda: b.recv_into(bytearray(10)),
            "recvfrom": lambda: b.recvfrom(10),
            "recvmsg": lambda: b.recvmsg(10),
            "accept": lambda: lst.accept(),
        }
        for name, call in calls.items():
            with pytest.raises(TimeoutError) as info:
                await bounded(call())
            assert info.value.__context__ is None, name
            assert_timed_out(info.value)
        small_buffers(a, b)
        await fill(b)
        writes: dict[str, Callable[[], Awaitable[object]]] = {
            "send": lambda: b.send(b"x" * CHUNK),
            "sendall": lambda: b.sendall(b"x" * CHUNK),
        }
        for name, call in writes.items():
            with pytest.raises(TimeoutError) as info:
                await bounded(call())
            assert info.value.__context__ is None, name
