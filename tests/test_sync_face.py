"""The sync face (``import asocket.sync as socket``) keeps the stdlib's semantics.

Single-threaded behaviour: timeout modes, the descriptor's blocking flag, the
one-step trampoline, ``makefile()``, the module functions, a drop-in script,
and the protocol families on loopback. Where it can, a test runs the same
scenario on the stdlib's ``socket`` module and compares. Threads, ``close()``
from another thread and EINTR are in ``test_sync_threads.py``.
"""

from __future__ import annotations

import array
import asyncio
import errno
import io
import math
import os
import select
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from contextlib import ExitStack
from types import ModuleType
from typing import Any

import pytest
from _diff import blocked_send_after_shutdown

import asocket._sync
import asocket.sync
from asocket._waiters.poll import PollWaiter

S = asocket.sync
MODULES = [pytest.param(socket, id="stdlib"), pytest.param(S, id="sync")]
LOOPBACK = "127.0.0.1"
JOIN = 10.0  # seconds: an upper bound for helper threads, never a timing assertion


@pytest.fixture(autouse=True)
def _restore_default_timeouts() -> Iterator[None]:
    ours, stdlib = S.getdefaulttimeout(), socket.getdefaulttimeout()
    try:
        yield
    finally:
        S.setdefaulttimeout(ours)
        socket.setdefaulttimeout(stdlib)


# -- helpers ------------------------------------------------------------------


def tcp_pair(mod: ModuleType = S, family: int = socket.AF_INET, host: str = LOOPBACK) -> Any:
    """A connected (client, server-side) TCP pair made with ``mod``."""
    with mod.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind((host, 0))
        listener.listen()
        client = mod.socket(family, socket.SOCK_STREAM)
        try:
            client.connect(listener.getsockname()[:2])
            conn, _ = listener.accept()
        except BaseException:
            client.close()
            raise
    return client, conn


def fill(sock: Any) -> int:
    """Fill ``sock``'s send buffer (non-blocking sends until EAGAIN); restore its mode."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    total = 0
    try:
        while True:
            total += sock.send(b"\0" * 65536)
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(timeout)
    return total


class Reader:
    """A thread that reads ``sock`` until EOF (or ``n`` bytes), optionally slowly."""

    def __init__(self, sock: Any, n: int | None = None, chunk: int = 65536, pause: float = 0.0):
        self.sock, self.n, self.chunk, self.pause = sock, n, chunk, pause
        self.data = bytearray()
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.is_set() and (self.n is None or len(self.data) < self.n):
                chunk = self.sock.recv(self.chunk)
                if not chunk:
                    return
                self.data += chunk
                if self.pause:
                    time.sleep(self.pause)
        except BaseException as exc:  # reported by result()
            self.error = exc

    def result(self) -> bytes:
        self.thread.join(JOIN)
        assert not self.thread.is_alive(), "reader thread did not finish"
        if self.error is not None:
            raise self.error
        return bytes(self.data)


def later(delay: float, fn: Callable[[], object]) -> threading.Thread:
    """Run ``fn`` in a daemon thread after ``delay`` seconds."""

    def body() -> None:
        time.sleep(delay)
        fn()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread


def observe(sock: Any) -> tuple[Any, ...]:
    return (sock.gettimeout(), sock.getblocking(), sock.timeout, os.get_blocking(sock.fileno()))


def exc_info(fn: Callable[[], object]) -> tuple[type[BaseException], Any, str] | None:
    try:
        fn()
    except Exception as exc:
        return type(exc), getattr(exc, "errno", None), str(exc)
    return None


# -- timeout modes ------------------------------------------------------------

STEPS: list[tuple[str, Any]] = [
    ("settimeout", 2.5),
    ("settimeout", 0.0),
    ("settimeout", None),
    ("setblocking", False),
    ("setblocking", True),
    ("settimeout", 0),
    ("settimeout", 1),
    ("setblocking", True),
    ("settimeout", 0.0),
    ("settimeout", None),
]


def test_modes_and_descriptor_flag_match_stdlib() -> None:
    """gettimeout/getblocking/.timeout and os.get_blocking(fd) after each mode change."""
    with (
        socket.socket() as ref,
        S.socket() as ours,
    ):
        assert observe(ours) == observe(ref) == (None, True, None, True)
        for name, value in STEPS:
            getattr(ref, name)(value)
            getattr(ours, name)(value)
            assert observe(ours) == observe(ref), (name, value)


def test_descriptor_flag_by_mode() -> None:
    """Blocking mode: a blocking descriptor; timeout and non-blocking modes: O_NONBLOCK."""
    a, b = S.socketpair()
    with a, b:
        a.settimeout(None)
        assert os.get_blocking(a.fileno()) is True
        a.settimeout(3.0)
        assert os.get_blocking(a.fileno()) is False
        a.setblocking(False)
        assert os.get_blocking(a.fileno()) is False
        a.setblocking(True)
        assert os.get_blocking(a.fileno()) is True


@pytest.mark.parametrize("default", [None, 0.0, 2.0])
def test_descriptor_flag_of_new_sockets_matches_stdlib(default: float | None) -> None:
    """socket(), socketpair(), accept(), dup(), create_connection/server under a default."""
    socket.setdefaulttimeout(default)
    S.setdefaulttimeout(default)

    def scene(mod: ModuleType) -> list[tuple[Any, ...]]:
        seen = []
        with ExitStack() as stack:
            s = stack.enter_context(mod.socket())
            seen.append(observe(s))
            a, b = mod.socketpair()
            stack.enter_context(a)
            stack.enter_context(b)
            seen.append(observe(a))
            d = stack.enter_context(a.dup())
            seen.append(observe(d))
            srv = stack.enter_context(mod.create_server((LOOPBACK, 0)))
            seen.append(observe(srv))
            for timeout in (mod._GLOBAL_DEFAULT_TIMEOUT, None, 4.0):
                try:
                    cli = stack.enter_context(mod.create_connection(srv.getsockname(), timeout))
                except BlockingIOError as exc:  # default 0.0: connect() cannot wait
                    seen.append(("create_connection", exc.errno))
                    continue
                seen.append(observe(cli))
                srv.settimeout(5.0)  # accept() with a listener in timeout mode
                conn, _ = srv.accept()
                stack.enter_context(conn)
                seen.append(observe(conn))
        return seen

    assert scene(S) == scene(socket)


def test_settimeout_bad_values_match_stdlib() -> None:
    with socket.socket() as ref, S.socket() as ours:
        for bad in (-1, -0.5, "1", math.nan, 1e300, b"x", object()):
            expected = exc_info(lambda v=bad: ref.settimeout(v))
            assert expected is not None
            assert exc_info(lambda v=bad: ours.settimeout(v)) == expected, bad
            assert exc_info(lambda v=bad: S.setdefaulttimeout(v)) == expected, bad
        assert ours.gettimeout() is None


def test_default_timeout() -> None:
    """setdefaulttimeout() sets the mode of every new socket; it is asocket's own default."""
    assert S.getdefaulttimeout() is None
    S.setdefaulttimeout(1.5)
    assert S.getdefaulttimeout() == 1.5
    assert socket.getdefaulttimeout() is None  # the stdlib's default is left alone
    with ExitStack() as stack:
        new = [stack.enter_context(S.socket())]
        a, b = S.socketpair()
        new += [stack.enter_context(a), stack.enter_context(b)]
        srv = stack.enter_context(S.create_server((LOOPBACK, 0)))
        cli = stack.enter_context(S.create_connection(srv.getsockname()))
        conn, _ = srv.accept()
        new += [srv, cli, stack.enter_context(conn)]
        new.append(stack.enter_context(S.fromfd(a.fileno(), socket.AF_UNIX, socket.SOCK_STREAM)))
        for sock in new:
            assert sock.gettimeout() == 1.5
            assert os.get_blocking(sock.fileno()) is False
        S.setdefaulttimeout(0)
        with S.socket() as s0:
            assert s0.gettimeout() == 0.0
            assert s0.getblocking() is False
        S.setdefaulttimeout(None)
        with S.socket() as s1:
            assert s1.gettimeout() is None
            assert os.get_blocking(s1.fileno()) is True


def test_the_stdlibs_default_timeout_does_not_leak_into_sync_sockets() -> None:
    """Another library in the process may call ``socket.setdefaulttimeout()``; asocket's
    sockets follow asocket's default (None here): blocking mode, a blocking descriptor."""
    socket.setdefaulttimeout(3.0)
    with ExitStack() as stack:
        a, b = S.socketpair()
        stack.enter_context(a)
        stack.enter_context(b)
        srv = stack.enter_context(S.create_server((LOOPBACK, 0)))
        new = [stack.enter_context(S.socket()), a, b, srv]
        assert [observe(s) for s in new] == [(None, True, None, True)] * len(new)
        thread = later(0.1, lambda: b.sendall(b"late"))
        assert a.recv(10) == b"late"  # blocks in the kernel until the data comes
        thread.join(JOIN)
        addr = srv.getsockname()
        thread = later(0.1, lambda: stack.enter_context(socket.create_connection(addr)))
        conn, _ = srv.accept()
        stack.enter_context(conn)
        thread.join(JOIN)
        assert observe(conn) == (None, True, None, True)


def test_fromfd_leaves_the_descriptor_flag_as_the_stdlib() -> None:
    """fromfd() dups the fd; the flag lives in the shared file description, so
    changing it changes the original socket too (e.g. one an event loop uses)."""
    for mod in (socket, S):
        a, b = socket.socketpair()
        with a, b:
            a.setblocking(False)
            with mod.fromfd(a.fileno(), socket.AF_UNIX, socket.SOCK_STREAM) as c:
                assert c.gettimeout() is None
                assert os.get_blocking(a.fileno()) is False, mod.__name__
                assert a.gettimeout() == 0.0


@pytest.mark.skipif(not hasattr(socket, "SOCK_NONBLOCK"), reason="no SOCK_NONBLOCK")
def test_sock_nonblock_type_means_nonblocking_mode() -> None:
    kind = socket.SOCK_STREAM | socket.SOCK_NONBLOCK
    with socket.socket(socket.AF_INET, kind) as ref, S.socket(socket.AF_INET, kind) as ours:
        assert ref.gettimeout() == 0.0
        assert observe(ours) == observe(ref)
        assert ours.type == ref.type == socket.SOCK_STREAM


def test_closed_socket_raises_ebadf_as_stdlib() -> None:
    def scene(mod: ModuleType) -> list[Any]:
        a, b = mod.socketpair()
        b.close()
        a.close()
        a.close()  # idempotent
        calls: list[Callable[[], object]] = [
            lambda: a.recv(1),
            lambda: a.recv_into(bytearray(1)),
            lambda: a.send(b"x"),
            lambda: a.sendall(b"x"),
            lambda: a.recvmsg(1),
            lambda: a.sendmsg([b"x"]),
            lambda: a.accept(),
            lambda: a.settimeout(1.0),
            lambda: a.setblocking(False),
            lambda: a.getsockname(),
            lambda: a.shutdown(socket.SHUT_RDWR),
        ]
        # (not gettimeout(): the stdlib's settimeout() on a closed socket changes it, then fails)
        return [exc_info(call) for call in calls] + [a.fileno()]

    expected = scene(socket)
    assert all(e is None or e[1] == errno.EBADF for e in expected[:-1])
    assert scene(S) == expected
    for mod in (socket, S):  # and in timeout mode
        a, b = mod.socketpair()
        a.settimeout(1.0)
        a.close()
        b.close()
        with pytest.raises(OSError) as info:
            a.recv(1)
        assert info.value.errno == errno.EBADF


# -- non-blocking mode --------------------------------------------------------


def nonblocking_scene(mod: ModuleType) -> list[Any]:
    """Every call that would wait, in non-blocking mode: what it raises."""
    seen: list[Any] = []
    a, b = mod.socketpair()
    with a, b, mod.create_server((LOOPBACK, 0)) as srv:
        a.setblocking(False)
        srv.setblocking(False)
        seen.append(exc_info(lambda: a.recv(10)))
        seen.append(exc_info(lambda: a.recv_into(bytearray(10))))
        seen.append(exc_info(lambda: a.recvfrom(10)))
        seen.append(exc_info(lambda: a.recvfrom_into(bytearray(10))))
        seen.append(exc_info(lambda: a.recvmsg(10)))
        seen.append(exc_info(lambda: a.recvmsg_into([bytearray(10)])))
        seen.append(exc_info(lambda: srv.accept()))
        fill(a)
        seen.append(exc_info(lambda: a.send(b"x" * 65536)))
        seen.append(exc_info(lambda: a.sendall(b"x" * 65536)))
        seen.append(exc_info(lambda: a.sendmsg([b"x" * 65536])))
        with mod.socket() as c:
            c.setblocking(False)
            result = exc_info(lambda: c.connect(srv.getsockname()))
            # loopback may complete at once; otherwise it is EINPROGRESS, as the stdlib says
            assert result is None or result[:2] == (BlockingIOError, errno.EINPROGRESS)
        with mod.socket() as c:
            c.setblocking(False)
            assert c.connect_ex(srv.getsockname()) in (0, errno.EINPROGRESS)
    return seen


def test_nonblocking_mode_raises_blocking_io_error_at_once() -> None:
    start = time.monotonic()
    seen = nonblocking_scene(S)
    assert time.monotonic() - start < 5.0  # never waits (generous: no timing claim)
    for result in seen:
        assert result is not None
        assert result[0] is BlockingIOError
        assert result[1] == errno.EAGAIN
    assert seen == nonblocking_scene(socket)


def test_nonblocking_recv_gets_buffered_data() -> None:
    a, b = S.socketpair()
    with a, b:
        a.setblocking(False)
        b.sendall(b"ready")
        assert a.recv(10) == b"ready"
        with pytest.raises(BlockingIOError):
            a.recv(10)


# -- timeout mode -------------------------------------------------------------

TIMEOUT = 0.1


def timeout_calls(a: Any, srv: Any) -> dict[str, Callable[[], object]]:
    return {
        "recv": lambda: a.recv(10),
        "recv_into": lambda: a.recv_into(bytearray(10)),
        "recvfrom": lambda: a.recvfrom(10),
        "recvfrom_into": lambda: a.recvfrom_into(bytearray(10)),
        "recvmsg": lambda: a.recvmsg(10),
        "recvmsg_into": lambda: a.recvmsg_into([bytearray(10)]),
        "accept": lambda: srv.accept(),
        "send_full": lambda: a.send(b"x" * 65536),
        "sendall_full": lambda: a.sendall(b"x" * 65536),
        "sendmsg_full": lambda: a.sendmsg([b"x" * 65536]),
    }


@pytest.mark.parametrize("call", list(timeout_calls(None, None)))
def test_timeout_raises_timed_out(call: str) -> None:
    for mod in (socket, S):
        a, b = mod.socketpair()
        with a, b, mod.create_server((LOOPBACK, 0)) as srv:
            if call.endswith("_full"):
                fill(a)
            a.settimeout(TIMEOUT)
            srv.settimeout(TIMEOUT)
            start = time.monotonic()
            with pytest.raises(TimeoutError) as info:
                timeout_calls(a, srv)[call]()
            elapsed = time.monotonic() - start
            assert type(info.value) is TimeoutError
            assert info.value.args == ("timed out",)
            assert str(info.value) == "timed out"
            assert info.value.errno is None
            assert info.value.__context__ is None  # (not the attempt's BlockingIOError)
            assert isinstance(info.value, S.timeout)
            assert TIMEOUT * 0.5 <= elapsed < 5.0, mod.__name__
            # the socket stays usable after a timeout
            b.sendall(b"after")
            if not call.endswith("_full"):
                assert a.recv(10) == b"after"


def test_timeout_mode_gets_data_that_arrives_while_waiting() -> None:
    a, b = S.socketpair()
    with a, b:
        a.settimeout(5.0)
        thread = later(0.1, lambda: b.sendall(b"late"))
        assert a.recv(10) == b"late"
        thread.join(JOIN)


def test_sendall_deadline_covers_the_whole_call() -> None:
    """Each wait alone is shorter than the timeout; the whole call is not.

    A reader drains a little every 30 ms. A per-wait timeout would never
    expire (until the reader stops after a few seconds); the whole-call
    deadline expires after about 0.3 s.
    """
    a, b = S.socketpair()
    with a, b:
        reader = Reader(b, chunk=16384, pause=0.03)
        a.settimeout(0.3)
        start = time.monotonic()
        stop_later = later(0.0, lambda: reader.stop.wait(4.0) or reader.stop.set())
        with pytest.raises(TimeoutError, match=r"^timed out$"):
            a.sendall(b"x" * (64 << 20))
        elapsed = time.monotonic() - start
        reader.stop.set()
        a.shutdown(socket.SHUT_WR)
        received = reader.result()
        stop_later.join(JOIN)
        assert elapsed < 3.0, f"sendall's timeout ran {elapsed:.2f}s: it covers each wait only"
        assert 0 < len(received) < 64 << 20  # a partial send, as the stdlib's


@pytest.mark.parametrize("peer", [False, True], ids=["this-side", "peer"])
@pytest.mark.parametrize("timeout", [None, 0.5], ids=["blocking", "timeout"])
def test_shutdown_of_writing_ends_a_blocked_send_as_the_stdlibs(
    timeout: float | None, peer: bool
) -> None:
    # An AF_UNIX socket's poll() does not report shutdown(SHUT_WR) to a sender waiting
    # on its full buffer; a send blocked in the kernel is woken (EPIPE). The async
    # face's test (test_async_io.py) has the same case; here the same outcome as the
    # stdlib's in both modes.
    outcomes = {mod: blocked_send_after_shutdown(mod, timeout, peer) for mod in (socket, S)}
    assert outcomes[S] is outcomes[socket]
    assert outcomes[socket] is (BrokenPipeError if timeout is None else TimeoutError)


def test_sendall_in_timeout_mode_completes_with_a_reader() -> None:
    data = os.urandom(1 << 20) * 4
    a, b = S.socketpair()
    with a, b:
        reader = Reader(b, n=len(data))
        a.settimeout(10.0)
        a.sendall(data)
        assert reader.result() == data


def test_sendall_accepts_any_buffer_as_stdlib() -> None:
    a, b = S.socketpair()
    with a, b:
        a.settimeout(5.0)
        a.sendall(bytearray(b"ab"))
        a.sendall(memoryview(b"cdef")[1:3])
        a.sendall(array.array("i", [1]))
        assert b.recv(100) == b"abde" + array.array("i", [1]).tobytes()
        assert exc_info(lambda: a.sendall("text")) == exc_info(
            lambda: socket.socket.sendall(a._sock, "text")
        )


# -- blocking mode: the kernel waits --------------------------------------------


class CountingRaw:
    """Stands in for the raw stdlib socket: counts the calls made on it."""

    def __init__(self, raw: socket.socket) -> None:
        self.raw = raw
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.raw, name)
        if not callable(attr) or name in ("fileno", "close", "detach", "gettimeout"):
            return attr

        def counted(*args: Any) -> Any:
            self.calls[name] += 1
            return attr(*args)

        return counted


@pytest.fixture
def poll_waits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, float | None]]:
    """Every wait the sync face's poll waiter performs."""
    waits: list[tuple[int, int, float | None]] = []
    real = PollWaiter.wait

    async def wait(self: PollWaiter, fd: int, event: int, deadline: float | None) -> None:
        waits.append((fd, event, deadline))
        await real(self, fd, event, deadline)

    monkeypatch.setattr(PollWaiter, "wait", wait)
    return waits


def test_blocking_mode_is_one_syscall_and_never_polls(
    poll_waits: list[tuple[int, int, float | None]],
) -> None:
    a, b = S.socketpair()
    with a, b:
        raw = a._sock
        counting = CountingRaw(raw)
        a._sock = counting  # type: ignore[assignment]
        try:
            thread = later(0.1, lambda: b.sendall(b"late"))
            assert a.recv(10) == b"late"  # waited in the kernel for ~0.1 s
            thread.join(JOIN)
            assert counting.calls["recv"] == 1
            assert poll_waits == []
            # timeout mode: tried inline, then polled, then tried again
            a.settimeout(5.0)
            thread = later(0.1, lambda: b.sendall(b"late"))
            assert a.recv(10) == b"late"
            thread.join(JOIN)
            assert counting.calls["recv"] >= 3
            assert poll_waits and poll_waits[0][0] == a.fileno()
        finally:
            a._sock = raw


def test_blocking_mode_accept_and_sendall_wait_in_the_kernel(
    poll_waits: list[tuple[int, int, float | None]],
) -> None:
    with S.create_server((LOOPBACK, 0)) as srv:
        assert srv.gettimeout() is None
        thread = later(0.1, lambda: S.create_connection(srv.getsockname()).close())
        conn, _ = srv.accept()
        conn.close()
        thread.join(JOIN)
    a, b = S.socketpair()
    with a, b:
        reader = Reader(b, n=4 << 20)
        a.sendall(b"y" * (4 << 20))
        assert len(reader.result()) == 4 << 20
    assert poll_waits == []


# -- the one-step trampoline ----------------------------------------------------


class Suspend:
    """An awaitable that suspends once (as ``asyncio.sleep(0)`` does)."""

    def __await__(self) -> Iterator[None]:
        yield None


def test_run_returns_the_coroutines_value() -> None:
    async def answer() -> int:
        return 42

    assert asocket._sync.run(answer()) == 42


def test_run_propagates_the_coroutines_exception() -> None:
    async def fail() -> None:
        raise ConnectionResetError(errno.ECONNRESET, "reset")

    with pytest.raises(ConnectionResetError):
        asocket._sync.run(fail())


def test_run_raises_runtime_error_if_the_coroutine_suspends() -> None:
    finalized = []

    async def suspends() -> int:
        try:
            await Suspend()
            return 1
        finally:
            finalized.append(True)

    coro = suspends()
    with pytest.raises(RuntimeError, match="suspended"):
        asocket._sync.run(coro)
    assert finalized == [True]  # the coroutine was closed, not leaked
    assert coro.cr_frame is None


def test_run_raises_runtime_error_on_asyncio_sleep() -> None:
    async def sleeps() -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError):
        asocket._sync.run(sleeps())


def test_a_suspending_waiter_makes_the_call_raise_runtime_error() -> None:
    """If the sync face's waiter ever yielded, the call fails loudly instead of hanging."""

    class YieldingWaiter(PollWaiter):
        async def wait(self, fd: int, event: int, deadline: float | None) -> None:
            await Suspend()

    a0, b0 = socket.socketpair()
    a = S.socket(a0.family, a0.type, a0.proto, a0.detach())
    with a, b0:
        a.settimeout(5.0)
        with (
            pytest.MonkeyPatch.context() as patch,
            pytest.raises(RuntimeError, match="suspended"),
        ):
            patch.setattr(asocket._sync, "WAITER", YieldingWaiter())
            a.recv(10)
        b0.sendall(b"still usable")
        assert a.recv(100) == b"still usable"


def test_ordinary_operations_complete_in_one_step(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Every path that drives a core coroutine (waits included) finishes in one send()."""
    steps: list[str] = []
    real_run = asocket._sync.run

    def spy(coro: Coroutine[Any, Any, Any]) -> Any:
        result = real_run(coro)  # raises RuntimeError if the coroutine suspended
        steps.append(coro.__qualname__)
        return result

    monkeypatch.setattr(asocket._sync, "run", spy)
    path = tmp_path / "data"
    path.write_bytes(os.urandom(300_000))
    with S.create_server((LOOPBACK, 0)) as srv:
        srv.settimeout(5.0)
        thread = later(0.1, lambda: S.create_connection(srv.getsockname(), 5.0).close())
        conn, _ = srv.accept()  # waits in poll
        conn.close()
        thread.join(JOIN)
        with S.socket() as c:
            c.settimeout(5.0)
            c.connect(srv.getsockname())
            conn, _ = srv.accept()
            with conn:
                conn.settimeout(5.0)
                thread = later(0.1, lambda: c.sendall(b"late"))
                assert conn.recv(10) == b"late"  # waits in poll
                thread.join(JOIN)
                reader = Reader(conn, n=(4 << 20) + 300_000)
                c.sendall(b"z" * (4 << 20))  # waits in poll for the reader
                with open(path, "rb") as f:
                    assert c.sendfile(f) == 300_000
                assert len(reader.result()) == (4 << 20) + 300_000
    # accept, 2 x create_connection, connect, recv, sendall, sendfile: each through run()
    assert len(steps) >= 7, steps


# -- makefile -------------------------------------------------------------------


def test_makefile_rb_readline_and_read() -> None:
    a, b = S.socketpair()
    with a, b:
        with a.makefile("rb") as f:
            assert isinstance(f, io.BufferedReader)
            b.sendall(b"line one\nline two\nrest")
            b.shutdown(socket.SHUT_WR)
            assert f.readline() == b"line one\n"
            assert list(f) == [b"line two\n", b"rest"]
            assert f.read() == b""
        assert a.fileno() != -1  # closing the file leaves the socket open


def test_makefile_wb_write_and_flush() -> None:
    a, b = S.socketpair()
    with a, b, a.makefile("wb") as f:
        assert isinstance(f, io.BufferedWriter)
        f.write(b"buffered")
        f.flush()
        assert b.recv(100) == b"buffered"
        f.write(b"x" * 100_000)
        reader = Reader(b, n=100_000)
        f.flush()
        assert reader.result() == b"x" * 100_000


def test_makefile_rwb() -> None:
    a, b = S.socketpair()
    with a, b, a.makefile("rwb") as f:
        assert isinstance(f, io.BufferedRWPair)
        f.write(b"ping\n")
        f.flush()
        assert b.recv(10) == b"ping\n"
        b.sendall(b"pong\n")
        assert f.readline() == b"pong\n"


def test_makefile_text_mode_with_encoding() -> None:
    a, b = S.socketpair()
    with a, b:
        with (
            a.makefile("w", encoding="utf-8", newline="\n") as w,
            b.makefile("r", encoding="utf-8", errors="strict", newline="") as r,
        ):
            assert isinstance(w, io.TextIOWrapper)
            w.write("héllo wörld\nsecond ✓\n")
            w.flush()
            assert r.readline() == "héllo wörld\n"
            assert r.readline() == "second ✓\n"
            assert r.encoding == "utf-8"
        with a.makefile("w", encoding="latin-1") as w:
            w.write("é\n")
        assert b.recv(10) == "é\n".encode("latin-1")


def test_makefile_unbuffered() -> None:
    a, b = S.socketpair()
    with a, b:
        with a.makefile("rb", buffering=0) as raw_r, a.makefile("wb", buffering=0) as raw_w:
            assert isinstance(raw_r, socket.SocketIO)
            assert raw_w.write(b"direct") == 6
            assert b.recv(10) == b"direct"
            b.sendall(b"abc")
            buf = bytearray(10)
            assert raw_r.readinto(buf) == 3
            assert raw_r.fileno() == a.fileno()
            assert raw_r.mode == "rb"
        for mod in (socket, S):
            x, y = mod.socketpair()
            with x, y, pytest.raises(ValueError, match="unbuffered streams must be binary"):
                x.makefile("r", buffering=0)


def test_makefile_bad_mode_as_stdlib() -> None:
    for mode in ("rt", "x", "ab"):
        results = []
        for mod in (socket, S):
            a, b = mod.socketpair()
            with a, b:
                results.append(exc_info(lambda a=a, m=mode: a.makefile(m)))
        assert results[0] is not None and results[0] == results[1], mode


@pytest.mark.parametrize("mod", MODULES)
def test_makefile_keeps_the_socket_open_until_the_file_closes(mod: ModuleType) -> None:
    a, b = mod.socketpair()
    with b:
        f = a.makefile("rwb")
        a.close()
        assert a.fileno() != -1  # the file still holds the socket
        b.sendall(b"still here\n")
        assert f.readline() == b"still here\n"
        f.write(b"reply")
        f.flush()
        assert b.recv(10) == b"reply"
        g = a.makefile("rb")  # a second file on the "closed" socket, as the stdlib allows
        f.close()
        assert a.fileno() != -1
        g.close()
        assert a.fileno() == -1  # the last file closes the socket
        with pytest.raises(OSError) as info:
            a.recv(1)
        assert info.value.errno == errno.EBADF


def test_makefile_read_timeout_raises_timeout_error_as_stdlib() -> None:
    def scene(mod: ModuleType) -> list[Any]:
        a, b = mod.socketpair()
        with a, b, a.makefile("rb") as f:
            a.settimeout(TIMEOUT)
            b.sendall(b"partial line")
            seen = [exc_info(f.readline)]
            seen.append(exc_info(f.readline))  # the stdlib refuses a timed-out SocketIO
            return seen

    expected = scene(socket)
    assert expected[0] == (TimeoutError, None, "timed out")
    assert scene(S) == expected


def test_makefile_nonblocking_read_returns_none() -> None:
    a, b = S.socketpair()
    with a, b, a.makefile("rb", buffering=0) as f:
        a.setblocking(False)
        assert f.read(10) is None
        b.sendall(b"data")
        assert f.read(10) == b"data"


# -- a drop-in for `import socket` ----------------------------------------------


def script(socket: Any) -> list[Any]:
    """A small program written against the stdlib socket module."""
    out: list[Any] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(5)
        host, port = server.getsockname()
        with socket.create_connection((host, port), timeout=5) as client:
            conn, addr = server.accept()
            with conn:
                out.append((addr[0], conn.gettimeout(), client.gettimeout()))
                with client.makefile("w", encoding="utf-8", newline="\n") as w:
                    w.write("hello wörld\n")
                    w.write("second\n")
                with conn.makefile("rb") as r:
                    out.append(r.readline())
                    out.append(r.readline().decode())
                conn.sendall(b"pong")
                out.append(client.recv(4))
                conn.settimeout(0.05)
                try:
                    conn.recv(1)
                except socket.timeout as exc:
                    out.append(("timeout", type(exc).__name__, str(exc)))
                conn.setblocking(False)
                try:
                    conn.recv(1)
                except BlockingIOError as exc:
                    out.append(("would block", exc.errno))
                client.shutdown(socket.SHUT_WR)
                conn.setblocking(True)
                out.append(conn.recv(1))
                out.append((conn.family == socket.AF_INET, conn.type == socket.SOCK_STREAM))
                out.append(conn.getpeername() == client.getsockname())
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        out.append(s.connect_ex(free))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.connect(free)
        except socket.error as exc:
            out.append((type(exc).__name__, exc.errno, exc.strerror))
    out.append(socket.inet_ntoa(socket.inet_aton("10.1.2.3")))
    out.append(socket.htons(1) == 256)
    return out


def test_drop_in_script_runs_unchanged() -> None:
    expected = script(socket)
    assert expected[0] == ("127.0.0.1", None, 5.0)
    assert script(S) == expected


# -- module functions and names -------------------------------------------------


def test_names_equal_the_stdlibs() -> None:
    for name in (
        "AF_INET",
        "AF_INET6",
        "AF_UNIX",
        "SOCK_STREAM",
        "SOCK_DGRAM",
        "SOL_SOCKET",
        "SO_REUSEADDR",
        "IPPROTO_TCP",
        "TCP_NODELAY",
        "MSG_PEEK",
        "SHUT_WR",
        "AI_PASSIVE",
        "SCM_RIGHTS",
        "has_ipv6",
        "timeout",
        "error",
        "herror",
        "gaierror",
        "inet_pton",
        "inet_ntop",
        "inet_aton",
        "htons",
        "ntohl",
        "CMSG_LEN",
        "AddressFamily",
        "SocketKind",
        "_GLOBAL_DEFAULT_TIMEOUT",
    ):
        assert getattr(S, name) is getattr(socket, name), name
    assert S.timeout is TimeoutError
    assert S.error is OSError
    missing = set(socket.__all__) - set(dir(S))
    assert not missing
    assert S.socket is S.SocketType is S.SyncSocket


def test_resolution_functions_are_the_stdlibs() -> None:
    for name in ("getaddrinfo", "getnameinfo", "gethostbyname", "gethostbyname_ex", "getfqdn"):
        assert getattr(S, name) is getattr(socket, name), name
    assert S.getaddrinfo(LOOPBACK, 80, 0, socket.SOCK_STREAM)[0][4] == (LOOPBACK, 80)


def test_socketpair() -> None:
    a, b = S.socketpair()
    with a, b:
        assert isinstance(a, S.socket) and isinstance(b, S.socket)
        assert (a.family, a.type) == (socket.AF_UNIX, socket.SOCK_STREAM)
        assert repr(a).startswith("<asocket.sync.socket fd=")
        a.sendall(b"x")
        assert b.recv(1) == b"x"
    a, b = S.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b:
        assert a.type == socket.SOCK_DGRAM
        a.send(b"one")
        a.send(b"two")
        assert b.recv(10) == b"one"
        assert b.recv(10) == b"two"


def test_fromfd_dups_the_descriptor() -> None:
    a, b = socket.socketpair()
    with a, b:
        c = S.fromfd(a.fileno(), socket.AF_UNIX, socket.SOCK_STREAM)
        with c:
            assert isinstance(c, S.socket)
            assert c.fileno() != a.fileno()
            c.sendall(b"via dup")
            assert b.recv(10) == b"via dup"
        a.sendall(b"original")  # closing the copy leaves the original open
        assert b.recv(10) == b"original"


def test_from_socket_takes_ownership_and_keeps_the_timeout() -> None:
    a, b = socket.socketpair()
    with b:
        a.settimeout(2.5)
        fd = a.fileno()
        c = S.from_socket(a)
        with c:
            assert a.fileno() == -1  # detached
            assert c.fileno() == fd
            assert c.gettimeout() == 2.5
            assert os.get_blocking(fd) is False
            c.sendall(b"hi")
            assert b.recv(2) == b"hi"
    a, b = socket.socketpair()
    with b, S.from_socket(a) as c:
        assert c.gettimeout() is None and os.get_blocking(c.fileno()) is True


def test_create_connection_with_timeout_and_source_address() -> None:
    with S.create_server((LOOPBACK, 0)) as srv:
        with S.create_connection(srv.getsockname(), timeout=3.0) as c:
            assert c.gettimeout() == 3.0
            assert c.getpeername() == srv.getsockname()
            conn, _ = srv.accept()
            conn.close()
        with S.create_connection(srv.getsockname(), None, (LOOPBACK, 0)) as c:
            assert c.gettimeout() is None
            assert c.getsockname()[0] == LOOPBACK
            conn, _addr = srv.accept()
            conn.close()
        with S.create_connection(("localhost", srv.getsockname()[1]), timeout=3.0) as c:
            conn, _ = srv.accept()
            conn.close()


def free_port() -> int:
    """A loopback TCP port nobody listens on (bound, never listened, then closed)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
    return port


def test_create_connection_refused() -> None:
    port = free_port()
    with pytest.raises(ConnectionRefusedError) as info:
        S.create_connection((LOOPBACK, port), timeout=5.0)
    assert info.value.errno == errno.ECONNREFUSED
    with pytest.raises(ExceptionGroup) as group:
        S.create_connection((LOOPBACK, port), timeout=5.0, all_errors=True)
    with pytest.raises(ExceptionGroup) as ref:
        socket.create_connection((LOOPBACK, port), timeout=5.0, all_errors=True)
    assert str(group.value) == str(ref.value)
    assert [type(e) for e in group.value.exceptions] == [ConnectionRefusedError]
    assert group.value.exceptions[0].errno == errno.ECONNREFUSED


def test_create_server() -> None:
    with S.create_server((LOOPBACK, 0), backlog=5) as srv:
        assert isinstance(srv, S.socket)
        assert srv.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        assert srv.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0
        assert srv.gettimeout() is None
        port = srv.getsockname()[1]
        # the same bind error as the stdlib, naming the address
        with pytest.raises(OSError) as ours:
            S.create_server((LOOPBACK, port))
        with pytest.raises(OSError) as ref:
            socket.create_server((LOOPBACK, port))
        assert (type(ours.value), ours.value.errno, str(ours.value)) == (
            type(ref.value),
            ref.value.errno,
            str(ref.value),
        )
    if S.has_dualstack_ipv6():
        with S.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True) as srv:
            assert srv.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
    with pytest.raises(ValueError, match="requires AF_INET6"):
        S.create_server((LOOPBACK, 0), dualstack_ipv6=True)


# -- connections on loopback ------------------------------------------------------


def test_half_close() -> None:
    client, conn = tcp_pair()
    with client, conn:
        client.sendall(b"request")
        client.shutdown(socket.SHUT_WR)
        assert conn.recv(100) == b"request"
        assert conn.recv(100) == b""  # EOF, and again
        assert conn.recv(100) == b""
        conn.sendall(b"response")  # the other direction still works
        conn.shutdown(socket.SHUT_WR)
        client.settimeout(5.0)
        assert client.recv(100) == b"response"
        assert client.recv(100) == b""


@pytest.mark.parametrize("timeout", [None, 5.0])
def test_peer_reset(timeout: float | None) -> None:
    client, conn = tcp_pair()
    with client, conn:
        client.settimeout(timeout)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # an RST, not a FIN
        with pytest.raises(ConnectionResetError) as info:
            client.recv(10)
        assert info.value.errno == errno.ECONNRESET


@pytest.mark.parametrize("timeout", [None, 0.0, 5.0])
def test_connection_refused(timeout: float | None) -> None:
    port = free_port()
    for mod in (socket, S):
        with mod.socket() as s:
            s.settimeout(timeout)
            if timeout == 0.0:
                # non-blocking: EINPROGRESS now, or the refusal itself on loopback
                first = exc_info(lambda s=s: s.connect((LOOPBACK, port)))
                assert first is not None
                assert first[1] in (errno.EINPROGRESS, errno.ECONNREFUSED), mod.__name__
                continue
            with pytest.raises(ConnectionRefusedError) as info:
                s.connect((LOOPBACK, port))
            assert info.value.errno == errno.ECONNREFUSED
        with mod.socket() as s:
            s.settimeout(timeout)
            assert s.connect_ex((LOOPBACK, port)) == errno.ECONNREFUSED


def test_connect_ex_raises_for_a_bad_address_as_stdlib() -> None:
    for mod in (socket, S):
        with mod.socket() as c:
            assert exc_info(lambda c=c: c.connect_ex(("127.0.0.1", -1)))[0] is OverflowError
            assert exc_info(lambda c=c: c.connect_ex("not a tuple"))[0] is TypeError


@pytest.mark.parametrize("timeout", [None, 0.0, 5.0])
def test_connect_on_a_connected_socket_as_stdlib(timeout: float | None) -> None:
    def scene(mod: ModuleType) -> list[Any]:
        seen: list[Any] = []
        with mod.create_server((LOOPBACK, 0)) as srv, mod.socket() as c:
            c.settimeout(timeout)
            seen.append(c.connect_ex(srv.getsockname()))
            select.select([], [c], [], 5.0)  # non-blocking: let the handshake finish
            seen.append(c.connect_ex(srv.getsockname()))
            seen.append(c.connect_ex(srv.getsockname()))
            seen.append(exc_info(lambda: c.connect(srv.getsockname())))
            conn, _ = srv.accept()
            conn.close()
        return seen

    expected = scene(socket)
    assert expected[-1][:2] == (OSError, errno.EISCONN)
    assert scene(S) == expected


def test_unix_stream(tmp_path: Any) -> None:
    path = str(tmp_path / "s.sock")
    with S.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
        srv.bind(path)
        srv.listen()
        assert srv.getsockname() == path
        with S.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.settimeout(5.0)
            c.connect(path)
            conn, addr = srv.accept()
            with conn:
                assert addr == ""  # an unbound client, as the stdlib reports it
                c.sendall(b"unix")
                assert conn.recv(10) == b"unix"
                conn.settimeout(TIMEOUT)
                with pytest.raises(TimeoutError):
                    conn.recv(10)
    with S.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c, pytest.raises(OSError) as info:
        c.connect(str(tmp_path / "nobody"))
    assert info.value.errno == errno.ENOENT


def test_unix_datagram(tmp_path: Any) -> None:
    a_path, b_path = str(tmp_path / "a.sock"), str(tmp_path / "b.sock")
    with (
        S.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as a,
        S.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as b,
    ):
        a.bind(a_path)
        b.bind(b_path)
        b.settimeout(5.0)
        assert a.sendto(b"dgram", b_path) == 5
        assert b.recvfrom(100) == (b"dgram", a_path)
        buf = bytearray(100)
        a.sendto(b"into", b_path)
        assert b.recvfrom_into(buf) == (4, a_path)
        assert buf[:4] == b"into"
        b.connect(a_path)
        b.send(b"back")
        assert a.recv(100) == b"back"
        b.settimeout(TIMEOUT)
        with pytest.raises(TimeoutError):
            b.recvfrom(100)


@pytest.mark.parametrize("timeout", [None, 5.0])
def test_udp_loopback(timeout: float | None) -> None:
    with (
        S.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
        S.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
    ):
        a.settimeout(timeout)
        b.settimeout(timeout)
        a.bind((LOOPBACK, 0))
        b.bind((LOOPBACK, 0))
        assert a.sendto(b"ping", b.getsockname()) == 4
        data, addr = b.recvfrom(100)
        assert (data, addr) == (b"ping", a.getsockname())
        assert b.sendto(b"pong", 0, addr) == 4
        assert a.recvfrom(100) == (b"pong", b.getsockname())
        # a host name is resolved, as the stdlib's sendto does
        a.sendto(b"by name", ("localhost", b.getsockname()[1]))
        assert b.recv(100) == b"by name"
        a.connect(b.getsockname())
        a.send(b"connected")
        assert b.recv(100) == b"connected"
        b.settimeout(TIMEOUT)
        with pytest.raises(TimeoutError):
            b.recvfrom(100)


def ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) here")
def test_ipv6_loopback() -> None:
    client, conn = tcp_pair(S, socket.AF_INET6, "::1")
    with client, conn:
        assert client.family == socket.AF_INET6
        assert client.getpeername()[0] == "::1"
        client.settimeout(5.0)
        conn.sendall(b"six")
        assert client.recv(10) == b"six"
    with (
        S.create_server(("::1", 0), family=socket.AF_INET6) as srv,
        S.create_connection(srv.getsockname()[:2], timeout=5.0) as c,
    ):
        conn, addr = srv.accept()
        with conn:
            assert addr[0] == "::1"
            c.sendall(b"v6")
            assert conn.recv(10) == b"v6"
    with (
        S.socket(socket.AF_INET6, socket.SOCK_DGRAM) as a,
        S.socket(socket.AF_INET6, socket.SOCK_DGRAM) as b,
    ):
        b.bind(("::1", 0))
        b.settimeout(5.0)
        a.sendto(b"udp6", b.getsockname())
        assert b.recv(10) == b"udp6"


# -- sendfile -------------------------------------------------------------------

CONTENT = bytes(range(256)) * 1000  # 256 000 bytes


def sendfile_scene(mod: ModuleType, make_file: Callable[[], Any], **kwargs: Any) -> Any:
    a, b = mod.socketpair()
    with a, b, make_file() as f:
        a.settimeout(kwargs.pop("timeout", None))
        reader = Reader(b)
        try:
            sent = a.sendfile(f, **kwargs)
            position = f.tell()
        finally:
            a.shutdown(socket.SHUT_WR)
        return sent, position, reader.result()


@pytest.mark.parametrize("kind", ["file", "bytesio"])
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"offset": 1000},
        {"offset": 10, "count": 50_000},
        {"count": 1},
        {"count": 10**9},
        {"offset": len(CONTENT)},
        {"timeout": 5.0, "offset": 3},
    ],
    ids=repr,
)
def test_sendfile(tmp_path: Any, kind: str, kwargs: dict[str, Any]) -> None:
    path = tmp_path / "content"
    path.write_bytes(CONTENT)

    def make_file() -> Any:
        return open(path, "rb") if kind == "file" else io.BytesIO(CONTENT)

    sent, position, data = sendfile_scene(S, make_file, **dict(kwargs))
    offset, count = kwargs.get("offset", 0), kwargs.get("count")
    expected = CONTENT[offset : None if count is None else offset + count]
    assert data == expected
    assert sent == len(expected)
    assert (sent, position, data) == sendfile_scene(socket, make_file, **dict(kwargs))


def test_sendfile_empty_file_and_errors(tmp_path: Any) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    text = tmp_path / "text"
    text.write_text("text")
    for mod in (socket, S):
        a, b = mod.socketpair()
        with a, b:
            with open(empty, "rb") as f:
                assert a.sendfile(f) == 0
                assert f.tell() == 0
            with open(text, encoding="utf-8") as f, pytest.raises(ValueError, match="binary"):
                a.sendfile(f)
            with pytest.raises(ValueError, match="positive integer"):
                a.sendfile(io.BytesIO(b"x"), count=0)
            a.setblocking(False)
            with pytest.raises(ValueError, match="non-blocking"):
                a.sendfile(io.BytesIO(b"x"))
        with (
            mod.socket(socket.AF_INET, socket.SOCK_DGRAM) as u,
            pytest.raises(ValueError, match="SOCK_STREAM"),
        ):
            u.sendfile(io.BytesIO(b"x"))


def test_sendfile_over_tcp_several_mb(tmp_path: Any) -> None:
    path = tmp_path / "big"
    data = os.urandom(3 << 20)
    path.write_bytes(data)
    client, conn = tcp_pair()
    with client, conn, open(path, "rb") as f:
        client.settimeout(10.0)
        reader = Reader(conn, n=len(data))
        assert client.sendfile(f) == len(data)
        assert f.tell() == len(data)
        assert reader.result() == data


# -- ancillary data -------------------------------------------------------------


def test_sendmsg_recvmsg_pass_a_descriptor() -> None:
    a, b = S.socketpair()
    r, w = os.pipe()
    try:
        with a, b:
            fds = array.array("i", [r])
            assert a.sendmsg([b"fd", b"!"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)]) == 3
            b.settimeout(5.0)
            msg, ancdata, flags, _ = b.recvmsg(10, socket.CMSG_SPACE(fds.itemsize))
            assert msg == b"fd!"
            assert flags == 0
            [(level, kind, payload)] = ancdata
            assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
            received = array.array("i")
            received.frombytes(payload)
            [new_r] = received
            try:
                assert new_r != r
                os.write(w, b"through the passed fd")
                assert os.read(new_r, 100) == b"through the passed fd"
            finally:
                os.close(new_r)
            # recvmsg_into, and the stdlib's send_fds/recv_fds helpers on our sockets
            S.send_fds(a, [b"again"], [w])
            buf = bytearray(10)
            nbytes, ancdata, flags, _addr = b.recvmsg_into([buf], socket.CMSG_SPACE(4))
            assert buf[:nbytes] == b"again"
            received = array.array("i")
            received.frombytes(ancdata[0][2])
            os.close(received[0])
            S.send_fds(a, [b"helper"], [r, w])
            msg, fds_list, flags, _ = S.recv_fds(b, 10, 2)
            assert msg == b"helper" and len(fds_list) == 2
            for fd in fds_list:
                os.close(fd)
    finally:
        os.close(r)
        os.close(w)
