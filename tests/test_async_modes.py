"""The async face's timeout modes, as docs/modes.md states them.

``None`` waits, ``0.0`` raises ``BlockingIOError`` at once, ``t > 0`` raises
``TimeoutError('timed out')`` after ``t`` (for ``sendall``: ``t`` for the whole
call). Every test runs on each loop of the matrix (see ``conftest.py``).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from collections.abc import Iterator

import pytest
from _async_helpers import (
    CHUNK,
    WAIT,
    fill,
    listener,
    pending_connect_target,
    small_buffers,
)

import asocket

pytestmark = pytest.mark.asyncio


@pytest.fixture(autouse=True)
def _restore_default_timeout() -> Iterator[None]:
    saved = asocket.getdefaulttimeout()
    stdlib_saved = socket.getdefaulttimeout()
    try:
        yield
    finally:
        asocket.setdefaulttimeout(saved)
        socket.setdefaulttimeout(stdlib_saved)


def close_all(*socks: socket.socket | asocket.socket) -> None:
    for s in socks:
        s.close()


def assert_timed_out(exc: BaseException) -> None:
    assert isinstance(exc, TimeoutError)
    assert isinstance(exc, socket.timeout)
    assert str(exc) == "timed out"


# -- the mode setters and getters -----------------------------------------------


async def test_new_socket_blocking_by_default(loop_kind: str) -> None:
    assert asocket.getdefaulttimeout() is None
    with asocket.socket() as s:
        assert s.gettimeout() is None
        assert s.getblocking() is True
        assert s.timeout is None


async def test_settimeout_modes(loop_kind: str) -> None:
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


async def test_setblocking(loop_kind: str) -> None:
    with asocket.socket() as s:
        s.settimeout(1.5)
        s.setblocking(False)
        assert s.gettimeout() == 0.0
        assert s.getblocking() is False
        s.setblocking(True)
        assert s.gettimeout() is None
        assert s.getblocking() is True


async def test_descriptor_always_nonblocking(loop_kind: str) -> None:
    """The async face keeps O_NONBLOCK in every mode; getblocking() reports the mode."""
    with asocket.socket() as s:
        for mode in (None, 0.0, 1.0, None):
            s.settimeout(mode)
            assert os.get_blocking(s.fileno()) is False


async def test_settimeout_bad_values_as_stdlib(loop_kind: str) -> None:
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


async def test_default_timeout_applies_to_new_sockets(loop_kind: str) -> None:
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


async def test_setdefaulttimeout_bad_values(loop_kind: str) -> None:
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
    loop_kind: str, default: float | None, listener_timeout: float | None
) -> None:
    """As the stdlib: the accepted socket's timeout is the module default, whatever the
    listener's mode."""
    asocket.setdefaulttimeout(default)
    lst = await listener()
    with lst, asocket.socket() as cli:
        lst.settimeout(listener_timeout)
        cli.settimeout(None)
        await asyncio.wait_for(cli.connect(lst.getsockname()), WAIT)
        if listener_timeout == 0.0:
            for _ in range(500):
                try:
                    conn, _ = await lst.accept()
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.01)
            else:  # pragma: no cover
                raise AssertionError("connection never arrived")
        else:
            conn, _ = await asyncio.wait_for(lst.accept(), WAIT)
        with conn:
            assert conn.gettimeout() == default
            assert conn.getblocking() is (default != 0.0)
            assert os.get_blocking(conn.fileno()) is False
            assert isinstance(conn, asocket.socket)


async def test_closed_socket_raises_ebadf(loop_kind: str) -> None:
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


async def test_nonblocking_recv_raises_at_once(loop_kind: str) -> None:
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
                await asyncio.sleep(0.005)
        else:  # pragma: no cover
            raise AssertionError("data never arrived")


async def test_nonblocking_recvfrom_raises_at_once(loop_kind: str) -> None:
    with asocket.socket(asocket.AF_INET, asocket.SOCK_DGRAM) as s:
        await s.bind(("127.0.0.1", 0))
        s.settimeout(0.0)
        with pytest.raises(BlockingIOError):
            await s.recvfrom(10)
        with pytest.raises(BlockingIOError):
            await s.recvfrom_into(bytearray(10))


async def test_nonblocking_send_full_buffer_raises(loop_kind: str) -> None:
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


async def test_nonblocking_accept_raises_at_once(loop_kind: str) -> None:
    with await listener() as lst:
        lst.setblocking(False)
        t0 = time.monotonic()
        with pytest.raises(BlockingIOError) as info:
            await lst.accept()
        assert info.value.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
        assert time.monotonic() - t0 < 1.0


async def test_nonblocking_connect_einprogress(loop_kind: str) -> None:
    with await listener() as lst, asocket.socket() as cli:
        cli.setblocking(False)
        with pytest.raises(BlockingIOError) as info:
            await cli.connect(lst.getsockname())
        assert info.value.errno == errno.EINPROGRESS
        # The connection completes in the background, as with the stdlib.
        conn, _ = await asyncio.wait_for(lst.accept(), WAIT)
        with conn:
            for _ in range(200):
                if cli.getsockopt(asocket.SOL_SOCKET, asocket.SO_ERROR) == 0:
                    try:
                        cli.getpeername()
                        break
                    except OSError:
                        pass
                await asyncio.sleep(0.005)
            assert cli.getpeername() == lst.getsockname()


async def test_nonblocking_connect_ex_einprogress(loop_kind: str) -> None:
    with await listener() as lst, asocket.socket() as cli:
        cli.setblocking(False)
        assert await cli.connect_ex(lst.getsockname()) == errno.EINPROGRESS
        conn, _ = await asyncio.wait_for(lst.accept(), WAIT)
        conn.close()


# -- timeout mode: TimeoutError('timed out') after t -------------------------------


async def test_timeout_recv(loop_kind: str) -> None:
    a, b = asocket.socketpair()
    with a, b:
        b.settimeout(0.2)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            await asyncio.wait_for(b.recv(10), WAIT)
        elapsed = time.monotonic() - t0
        assert_timed_out(info.value)
        assert 0.1 <= elapsed < 3.0
        # The socket is still usable, and data within the timeout is returned.
        await a.sendall(b"late")
        assert await asyncio.wait_for(b.recv(10), WAIT) == b"late"


async def test_timeout_recv_into(loop_kind: str) -> None:
    a, b = asocket.socketpair()
    with a, b:
        b.settimeout(0.1)
        with pytest.raises(TimeoutError) as info:
            await asyncio.wait_for(b.recv_into(bytearray(4)), WAIT)
        assert_timed_out(info.value)


async def test_timeout_data_arrives_in_time(loop_kind: str) -> None:
    a, b = asocket.socketpair()
    with a, b:
        b.settimeout(3.0)

        async def later() -> None:
            await asyncio.sleep(0.1)
            await a.sendall(b"in time")

        task = asyncio.create_task(later())
        assert await asyncio.wait_for(b.recv(10), WAIT) == b"in time"
        await task


async def test_timeout_accept(loop_kind: str) -> None:
    with await listener() as lst:
        lst.settimeout(0.2)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            await asyncio.wait_for(lst.accept(), WAIT)
        assert_timed_out(info.value)
        assert 0.1 <= time.monotonic() - t0 < 3.0
        # Still usable.
        with asocket.socket() as cli:
            await asyncio.wait_for(cli.connect(lst.getsockname()), WAIT)
            conn, _ = await asyncio.wait_for(lst.accept(), WAIT)
            conn.close()


async def test_timeout_recvfrom(loop_kind: str) -> None:
    with asocket.socket(asocket.AF_INET, asocket.SOCK_DGRAM) as s:
        await s.bind(("127.0.0.1", 0))
        s.settimeout(0.2)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            await asyncio.wait_for(s.recvfrom(10), WAIT)
        assert_timed_out(info.value)
        assert 0.1 <= time.monotonic() - t0 < 3.0
        with pytest.raises(TimeoutError) as info:
            await asyncio.wait_for(s.recvfrom_into(bytearray(10)), WAIT)
        assert_timed_out(info.value)


async def test_timeout_send_full_buffer(loop_kind: str) -> None:
    a, b = asocket.socketpair()
    with a, b:
        small_buffers(a, b)
        await fill(a)
        a.settimeout(0.2)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            await asyncio.wait_for(a.send(b"x" * CHUNK), WAIT)
        assert_timed_out(info.value)
        assert 0.1 <= time.monotonic() - t0 < 3.0


async def test_timeout_sendall_full_buffer(loop_kind: str) -> None:
    a, b = asocket.socketpair()
    with a, b:
        small_buffers(a, b)
        await fill(a)
        a.settimeout(0.2)
        with pytest.raises(TimeoutError) as info:
            await asyncio.wait_for(a.sendall(b"x" * CHUNK), WAIT)
        assert_timed_out(info.value)


async def test_timeout_connect(loop_kind: str) -> None:
    lst, fillers = pending_connect_target()
    try:
        with asocket.socket() as cli:
            cli.settimeout(0.2)
            t0 = time.monotonic()
            with pytest.raises(TimeoutError) as info:
                await asyncio.wait_for(cli.connect(lst.getsockname()), WAIT)
            assert_timed_out(info.value)
            assert 0.1 <= time.monotonic() - t0 < 3.0
        with asocket.socket() as cli:
            cli.settimeout(0.2)
            # The stdlib's connect_ex reports a timeout as EWOULDBLOCK.
            err = await asyncio.wait_for(cli.connect_ex(lst.getsockname()), WAIT)
            assert err == errno.EWOULDBLOCK
    finally:
        close_all(lst, *fillers)


async def test_sendall_deadline_covers_whole_call(loop_kind: str) -> None:
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
                await asyncio.sleep(0.01)

        reader = asyncio.create_task(slow_reader())
        try:
            a.settimeout(0.3)
            payload = b"s" * (8 * 1024 * 1024)  # >= 5 s at the reader's pace
            t0 = time.monotonic()
            with pytest.raises(TimeoutError) as info:
                await asyncio.wait_for(a.sendall(payload), 10)
            elapsed = time.monotonic() - t0
            assert_timed_out(info.value)
            assert elapsed < 3.0, elapsed
            await asyncio.sleep(0.05)
            assert 0 < received < len(payload)  # it made progress, chunk by chunk
        finally:
            reader.cancel()
            try:
                await reader
            except asyncio.CancelledError:
                pass


async def test_timeout_changed_between_calls(loop_kind: str) -> None:
    """Each call takes the mode in force when it starts."""
    a, b = asocket.socketpair()
    with a, b:
        b.settimeout(0.1)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(b.recv(1), WAIT)
        b.setblocking(False)
        with pytest.raises(BlockingIOError):
            await b.recv(1)
        b.setblocking(True)
        task = asyncio.create_task(b.recv(1))
        await asyncio.sleep(0.3)
        assert not task.done()  # blocking: no timeout
        await a.sendall(b"z")
        assert await asyncio.wait_for(task, WAIT) == b"z"


async def test_timeout_recv_with_flags_and_recvmsg(loop_kind: str) -> None:
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
                await asyncio.wait_for(call(), WAIT)
            assert_timed_out(info.value)
        b.setblocking(False)
        with pytest.raises(BlockingIOError):
            await b.recvmsg(10)
        with pytest.raises(BlockingIOError):
            await b.recv(10, asocket.MSG_PEEK)
