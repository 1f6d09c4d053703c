"""The engine driven by fakes: scripted syscalls and a waiter on a virtual clock.

No real socket does I/O here and nothing sleeps: the fake waiter advances a
virtual clock, so deadlines, retries and partial sends are checked exactly.
The coroutines are driven by the sync face's trampoline (the fake waiter never
suspends), which also proves the engine needs nothing from an event loop.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable
from typing import Any

import pytest

from asocket import _engine as e, _ops
from asocket._sync import run
from asocket._timeouts import timed_out

EAGAIN = BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
EINTR = InterruptedError(errno.EINTR, "Interrupted system call")


class FakeWaiter:
    """Records each wait; each one advances the virtual clock by ``step`` seconds."""

    checkpoints = False

    def __init__(self, step: float = 0.25) -> None:
        self.now = 100.0
        self.step = step
        self.waits: list[tuple[int, int, float | None]] = []

    def clock(self) -> float:
        return self.now

    async def wait(self, fd: int, event: int, deadline: float | None) -> None:
        self.waits.append((fd, event, deadline))
        if deadline is not None and self.now + self.step > deadline:
            self.now = deadline
            raise timed_out()
        self.now += self.step

    def forget(self, fd: int, close: Callable[[], None] | None) -> None:
        if close is not None:
            close()

    async def to_thread(self, fn: Any, *args: Any, deadline: float | None) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.9", 0))]

    async def sleep(self, delay: float) -> None:
        self.now += delay


class FakeRaw:
    """A raw socket whose calls pop scripted results (an exception is raised)."""

    family = socket.AF_INET
    type = socket.SOCK_STREAM
    proto = 0

    def __init__(self, **scripts: list[Any]) -> None:
        self.scripts = scripts
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.closed = False

    def _next(self, name: str, *args: Any) -> Any:
        self.calls.append((name, args))
        result = self.scripts[name].pop(0)
        if isinstance(result, BaseException):
            raise result
        return result

    def recv(self, *args: Any) -> Any:
        return self._next("recv", *args)

    def send(self, data: Any, flags: int = 0) -> Any:
        n = self._next("send", bytes(data))
        return min(n, len(data))

    def connect_ex(self, address: Any) -> Any:
        return self._next("connect_ex", address)

    def connect(self, address: Any) -> None:  # the same script, raised as the C module does
        err = self._next("connect_ex", address)
        if err:
            raise OSError(err, os.strerror(err))

    def getsockopt(self, *args: Any) -> Any:
        return self._next("getsockopt", *args)

    def fileno(self) -> int:
        return -1 if self.closed else 7

    def close(self) -> None:
        self.closed = True


class FakeSocket:
    """The state the engine works on (``_engine.State``), on a scripted raw socket."""

    def __init__(self, raw: FakeRaw, timeout: float | None, waiter: FakeWaiter) -> None:
        self._sock: Any = raw
        self._family = socket.AF_INET
        self._timeout = timeout
        self.waiter = waiter
        self.watched_by: list[Any] = []

    def settimeout(self, value: float | None) -> None:
        self._timeout = value

    def _watcher(self, waiter: Any) -> Any:
        self.watched_by.append(waiter)
        return waiter


def make(raw: FakeRaw, timeout: float | None, waiter: FakeWaiter | None = None) -> FakeSocket:
    return FakeSocket(raw, timeout, waiter or FakeWaiter())


def connect(sock: FakeSocket, address: Any, ex: bool) -> Any:
    return e.connect(sock.waiter, sock, address, ex)


def recv(sock: FakeSocket) -> Any:
    return run(e.io(sock.waiter, sock, _ops.RECV, sock._sock.recv, 10, 0))


# -- the retry loop -------------------------------------------------------------


def test_data_at_once_never_waits() -> None:
    sock = make(FakeRaw(recv=[b"data"]), None)
    assert recv(sock) == b"data"
    assert sock.waiter.waits == []


def test_blocking_mode_waits_until_ready() -> None:
    sock = make(FakeRaw(recv=[EAGAIN, EAGAIN, EAGAIN, b"late"]), None)
    assert recv(sock) == b"late"
    assert sock.waiter.waits == [(7, _ops.READ, None)] * 3


def test_nonblocking_mode_raises_at_once() -> None:
    sock = make(FakeRaw(recv=[EAGAIN]), 0.0)
    with pytest.raises(BlockingIOError):
        recv(sock)
    assert sock.waiter.waits == []


def test_eintr_is_retried_without_waiting() -> None:
    sock = make(FakeRaw(recv=[EINTR, EINTR, b"ok"]), 0.0)
    assert recv(sock) == b"ok"
    assert sock.waiter.waits == []


def test_timeout_deadline_is_computed_once_per_call() -> None:
    waiter = FakeWaiter(step=0.25)
    sock = make(FakeRaw(recv=[EAGAIN] * 10), 1.0, waiter)
    with pytest.raises(TimeoutError, match=r"^timed out$"):
        recv(sock)
    deadlines = {d for _, _, d in waiter.waits}
    assert deadlines == {101.0}  # every wait got the same deadline: start + timeout
    assert waiter.now == 101.0


def test_robbed_wakeup_waits_again_with_time_left() -> None:
    # Woken, but another reader took the data: EAGAIN again, wait again, same deadline.
    waiter = FakeWaiter(step=0.25)
    sock = make(FakeRaw(recv=[EAGAIN, EAGAIN, b"second"]), 1.0, waiter)
    assert recv(sock) == b"second"
    assert [d for _, _, d in waiter.waits] == [101.0, 101.0]


def test_errors_other_than_ewouldblock_propagate() -> None:
    reset = ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
    sock = make(FakeRaw(recv=[EAGAIN, reset]), None)
    with pytest.raises(ConnectionResetError):
        recv(sock)


def test_every_wait_tells_the_socket_which_waiter_watches_it() -> None:
    sock = make(FakeRaw(recv=[EAGAIN, EAGAIN, b"x"]), None)
    assert recv(sock) == b"x"
    assert sock.watched_by == [sock.waiter, sock.waiter]


def test_io_until_uses_the_given_deadline_not_the_mode() -> None:
    waiter = FakeWaiter(step=0.25)
    sock = make(FakeRaw(recv=[EAGAIN] * 10), 30.0, waiter)
    with pytest.raises(TimeoutError, match=r"^timed out$"):
        run(e.io_until(waiter, sock, _ops.RECV, 100.5, sock._sock.recv, 10, 0))
    assert {d for _, _, d in waiter.waits} == {100.5}


def test_ssl_want_errors_choose_the_readiness() -> None:
    import ssl

    want_write = ssl.SSLWantWriteError(ssl.SSL_ERROR_WANT_WRITE, "want write")
    want_read = ssl.SSLWantReadError(ssl.SSL_ERROR_WANT_READ, "want read")
    sock = make(FakeRaw(recv=[want_write, want_read, b"tls"]), None)
    assert recv(sock) == b"tls"
    assert [event for _, event, _ in sock.waiter.waits] == [_ops.WRITE, _ops.READ]
    sock = make(FakeRaw(recv=[want_read]), 0.0)
    with pytest.raises(ssl.SSLWantReadError):  # non-blocking mode: the stdlib's error
        recv(sock)


def test_msg_dontwait_in_blocking_mode_raises_at_once() -> None:
    sock = make(FakeRaw(recv=[EAGAIN]), None)
    with pytest.raises(BlockingIOError):
        run(e.io(sock.waiter, sock, _ops.RECV, sock._sock.recv, 10, socket.MSG_DONTWAIT))
    assert sock.waiter.waits == []


# -- sendall: partial sends under one deadline ----------------------------------------


def test_sendall_partial_sends_and_waits() -> None:
    raw = FakeRaw(send=[3, EAGAIN, 4, EINTR, EAGAIN, 100])
    sock = make(raw, None)
    run(e.sendall(sock.waiter, sock, b"0123456789", 0))
    sent = [args[0] for name, args in raw.calls if name == "send"]
    assert sent == [b"0123456789", b"3456789", b"3456789", b"789", b"789", b"789"]
    assert len(sock.waiter.waits) == 2


def test_sendall_deadline_covers_the_whole_call() -> None:
    # Each chunk arrives well within the timeout, the whole call does not.
    waiter = FakeWaiter(step=0.4)
    raw = FakeRaw(send=[1, EAGAIN, 1, EAGAIN, 1, EAGAIN, 1, EAGAIN, 1])
    sock = make(raw, 1.0, waiter)
    with pytest.raises(TimeoutError, match=r"^timed out$"):
        run(e.sendall(waiter, sock, b"abcde", 0))
    assert {d for _, _, d in waiter.waits} == {101.0}


def test_sendall_nonblocking_raises_after_partial() -> None:
    raw = FakeRaw(send=[2, EAGAIN])
    sock = make(raw, 0.0)
    with pytest.raises(BlockingIOError):
        run(e.sendall(sock.waiter, sock, b"abcd", 0))


# -- connect: EINPROGRESS, wait writable, SO_ERROR ------------------------------------


def test_connect_in_progress_then_refused() -> None:
    raw = FakeRaw(connect_ex=[errno.EINPROGRESS], getsockopt=[errno.ECONNREFUSED])
    sock = make(raw, None)
    with pytest.raises(ConnectionRefusedError):
        run(e.connect(sock.waiter, sock, ("127.0.0.1", 1), False))
    assert sock.waiter.waits == [(7, _ops.WRITE, None)]


def test_connect_ex_returns_so_error() -> None:
    raw = FakeRaw(connect_ex=[errno.EINPROGRESS], getsockopt=[errno.ECONNREFUSED])
    assert run(connect(make(raw, 5.0), ("127.0.0.1", 1), True)) == errno.ECONNREFUSED


def test_connect_succeeds_after_wait() -> None:
    raw = FakeRaw(connect_ex=[errno.EINPROGRESS], getsockopt=[0])
    assert run(connect(make(raw, 5.0), ("127.0.0.1", 1), True)) == 0


def test_connect_eintr_means_in_progress() -> None:
    raw = FakeRaw(connect_ex=[errno.EINTR, errno.EISCONN], getsockopt=[0])  # + the settle
    sock = make(raw, None)
    run(e.connect(sock.waiter, sock, ("127.0.0.1", 1), False))
    assert len(sock.waiter.waits) == 1


def test_connect_timeout_raises_and_connect_ex_returns_ewouldblock() -> None:
    waiter = FakeWaiter(step=10.0)
    raw = FakeRaw(connect_ex=[errno.EINPROGRESS])
    with pytest.raises(TimeoutError, match=r"^timed out$"):
        run(connect(make(raw, 1.0, waiter), ("127.0.0.1", 1), False))
    raw = FakeRaw(connect_ex=[errno.EINPROGRESS])
    assert run(connect(make(raw, 1.0, FakeWaiter(step=10.0)), ("127.0.0.1", 1), True)) == (
        errno.EWOULDBLOCK
    )


def test_connect_nonblocking_raises_einprogress() -> None:
    raw = FakeRaw(connect_ex=[errno.EINPROGRESS])
    with pytest.raises(BlockingIOError) as info:
        run(connect(make(raw, 0.0), ("127.0.0.1", 1), False))
    assert info.value.errno == errno.EINPROGRESS


def test_connect_resolves_names_through_the_waiter() -> None:
    raw = FakeRaw(connect_ex=[0])
    run(connect(make(raw, None), ("some.name.example", 80), False))
    assert raw.calls == [("connect_ex", (("127.0.0.9", 80),))]


def test_connect_numeric_address_skips_the_resolver() -> None:
    raw = FakeRaw(connect_ex=[0])
    run(connect(make(raw, None), ("127.0.0.1", 80), False))
    assert raw.calls == [("connect_ex", (("127.0.0.1", 80),))]


# -- the trampoline ---------------------------------------------------------------------


def test_trampoline_refuses_a_coroutine_that_suspends() -> None:
    class Suspend:
        def __await__(self) -> Any:
            yield

    async def suspends() -> None:
        await Suspend()

    with pytest.raises(RuntimeError, match="suspended"):
        run(suspends())
