"""The sync face under threads and signals.

* Sharing: one thread in ``recv`` while another is in ``sendall`` on the same socket.
* ``close()`` from another thread wakes a thread blocked on the socket, whether
  it waits in the kernel (blocking mode) or in ``poll()`` (timeout mode), with
  ``OSError(EBADF)``, promptly. The stdlib would leave it blocked; every such
  thread here is a daemon joined with a bound, so a regression fails, never hangs.
* EINTR (PEP 475): a signal every 10 ms never leaks out as ``InterruptedError``;
  a handler that raises propagates its exception, as in the stdlib.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType, ModuleType
from typing import Any

import pytest

import asocket.sync
from asocket._waiters.poll import PollWaiter

S = asocket.sync
LOOPBACK = "127.0.0.1"
SETTLE = 0.2  # let a thread get into its blocking call (correctness never depends on it)
PROMPT = 5.0  # "promptly": a woken thread must finish within this (generous) bound
JOIN = 10.0


class Blocked:
    """Runs ``fn`` in a daemon thread and keeps its outcome."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.result: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:
            self.error = exc

    def join(self, timeout: float = PROMPT) -> bool:
        """True if the thread finished within ``timeout``."""
        self.thread.join(timeout)
        return not self.thread.is_alive()


def settle(sock: Any, threads: int = 1) -> None:
    """Let ``threads`` threads get into their blocking call on ``sock``.

    Waits until the socket has registered them as blocked (the registration
    ``close()`` looks at), then a little more so they reach the syscall. A thread
    that registers only after ``close()`` has looked is a separate race, made
    deterministic in ``test_close_racing_a_thread_entering_a_blocking_call``.
    """
    gate = getattr(sock, "_gate", None)
    registered = None if gate is None else gate._inside
    deadline = time.monotonic() + JOIN
    while registered is not None and len(registered) < threads and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(SETTLE)


def assert_ebadf(blocked: Blocked) -> None:
    assert blocked.error is not None, f"returned {blocked.result!r} instead of raising"
    assert type(blocked.error) is OSError, repr(blocked.error)
    assert blocked.error.errno == errno.EBADF


def fill(sock: Any) -> None:
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        while True:
            sock.send(b"\0" * 65536)
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(timeout)


def drain(sock: Any) -> int:
    """Read whatever is buffered on ``sock`` (never waits)."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    total = 0
    try:
        while chunk := sock.recv(1 << 20):
            total += len(chunk)
    except (BlockingIOError, ConnectionResetError):
        pass
    finally:
        sock.settimeout(timeout)
    return total


def tcp_pair() -> tuple[Any, Any]:
    with S.create_server((LOOPBACK, 0)) as srv:
        client = S.create_connection(srv.getsockname(), timeout=5.0)
        conn, _ = srv.accept()
    client.settimeout(None)
    return client, conn


# -- one thread reads while another writes ---------------------------------------


@pytest.mark.parametrize("timeout", [None, 10.0])
def test_recv_and_sendall_at_once_on_one_socket(timeout: float | None) -> None:
    """Full duplex on one socket: both directions block (4 MB each way), neither starves."""
    size = 4 << 20
    out_a, out_b = os.urandom(size), os.urandom(size)
    a, b = S.socketpair()
    with a, b:
        a.settimeout(timeout)
        b.settimeout(timeout)

        def read_all(sock: Any) -> bytes:
            data = bytearray()
            while len(data) < size:
                chunk = sock.recv(65536)
                assert chunk, "unexpected EOF"
                data += chunk
            return bytes(data)

        a_reader = Blocked(lambda: read_all(a))  # a: a thread in recv ...
        b_reader = Blocked(lambda: read_all(b))
        b_writer = Blocked(lambda: b.sendall(out_b))
        a.sendall(out_a)  # ... while this thread is in sendall on the same socket
        for blocked in (a_reader, b_reader, b_writer):
            assert blocked.join(JOIN), "a thread never finished"
            assert blocked.error is None, repr(blocked.error)
        assert a_reader.result == out_b
        assert b_reader.result == out_a


def test_two_readers_share_the_data() -> None:
    a, b = S.socketpair()
    with a, b:
        a.settimeout(10.0)
        readers = [Blocked(lambda: a.recv(1)) for _ in range(2)]
        time.sleep(SETTLE)
        b.sendall(b"xy")
        for r in readers:
            assert r.join(JOIN) and r.error is None
        assert sorted(r.result for r in readers) == [b"x", b"y"]


# -- close() from another thread ------------------------------------------------------


class Scene:
    """A socket with a thread blocked on it, and how to unblock it if close() did not."""

    def __init__(self, stack: ExitStack, tmp: str) -> None:
        self.stack = stack
        self.tmp = tmp
        self.unblock: Callable[[], None] = lambda: None
        # a send woken after it queued part of its data may return that count (as after a
        # signal); the bytes were sent. Its next call raises EBADF.
        self.partial_send: int | None = None

    def own(self, sock: Any) -> Any:
        return self.stack.enter_context(sock)


def scene_recv_blocking(sc: Scene) -> tuple[Any, Callable[[], Any]]:
    client, conn = tcp_pair()
    sc.own(client)
    sc.own(conn)
    sc.unblock = lambda: conn.sendall(b"unblock")
    return client, lambda: client.recv(100)


def scene_recv_timeout(sc: Scene) -> tuple[Any, Callable[[], Any]]:
    client, conn = tcp_pair()
    sc.own(client)
    sc.own(conn)
    client.settimeout(60.0)
    sc.unblock = lambda: conn.sendall(b"unblock")
    return client, lambda: client.recv(100)


def scene_recv_into_blocking(sc: Scene) -> tuple[Any, Callable[[], Any]]:
    a, b = S.socketpair()
    sc.own(a)
    sc.own(b)
    sc.unblock = lambda: b.sendall(b"unblock")
    return a, lambda: a.recv_into(bytearray(100))


def scene_accept_blocking(sc: Scene) -> tuple[Any, Callable[[], Any]]:
    srv = sc.own(S.create_server((LOOPBACK, 0)))
    addr = srv.getsockname()
    sc.unblock = lambda: sc.own(socket.create_connection(addr, timeout=5.0))
    return srv, srv.accept


def scene_accept_timeout(sc: Scene) -> tuple[Any, Callable[[], Any]]:
    srv, accept = scene_accept_blocking(sc)
    srv.settimeout(60.0)
    return srv, accept


def scene_sendall_blocking(sc: Scene) -> tuple[Any, Callable[[], Any]]:
    a, b = S.socketpair()
    sc.own(a)
    sc.own(b)
    sc.unblock = lambda: b.shutdown(socket.SHUT_RDWR)
    return a, lambda: a.sendall(b"x" * (16 << 20))  # nobody reads: the buffer fills


def scene_sendall_timeout(sc: Scene) -> tuple[Any, Callable[[], Any]]:
    a, sendall = scene_sendall_blocking(sc)
    a.settimeout(60.0)
    return a, sendall


def scene_send_full_blocking(sc: Scene) -> tuple[Any, Callable[[], Any]]:
    client, conn = tcp_pair()
    sc.own(client)
    sc.own(conn)
    # fixed buffer sizes: no autotuning frees room once the buffer is full
    client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    fill(client)
    sc.unblock = lambda: conn.shutdown(socket.SHUT_RDWR)
    sc.partial_send = 4 << 20
    return client, lambda: client.send(b"x" * (4 << 20))  # a blocking send waits for room


def scene_udp_recvfrom_blocking(sc: Scene) -> tuple[Any, Callable[[], Any]]:
    u = sc.own(S.socket(socket.AF_INET, socket.SOCK_DGRAM))
    u.bind((LOOPBACK, 0))
    addr = u.getsockname()

    def unblock() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"unblock", addr)

    sc.unblock = unblock
    return u, lambda: u.recvfrom(100)


def scene_udp_recvfrom_timeout(sc: Scene) -> tuple[Any, Callable[[], Any]]:
    u, recvfrom = scene_udp_recvfrom_blocking(sc)
    u.settimeout(60.0)
    return u, recvfrom


def scene_unix_stream_recv(sc: Scene) -> tuple[Any, Callable[[], Any]]:
    path = os.path.join(sc.tmp, "stream.sock")
    srv = sc.own(S.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    srv.bind(path)
    srv.listen()
    client = sc.own(S.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    client.connect(path)
    conn = sc.own(srv.accept()[0])
    sc.unblock = lambda: conn.sendall(b"unblock")
    return client, lambda: client.recv(100)


def scene_unix_accept(sc: Scene) -> tuple[Any, Callable[[], Any]]:
    path = os.path.join(sc.tmp, "listen.sock")
    srv = sc.own(S.socket(socket.AF_UNIX, socket.SOCK_STREAM))
    srv.bind(path)
    srv.listen()

    def unblock() -> None:
        c = sc.own(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
        c.connect(path)

    sc.unblock = unblock
    return srv, srv.accept


def scene_unix_dgram_recvfrom(sc: Scene) -> tuple[Any, Callable[[], Any]]:
    path = os.path.join(sc.tmp, "dgram.sock")
    u = sc.own(S.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
    u.bind(path)

    def unblock() -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"unblock", path)

    sc.unblock = unblock
    return u, lambda: u.recvfrom(100)


def scene_unix_dgram_recvfrom_timeout(sc: Scene) -> tuple[Any, Callable[[], Any]]:
    u, recvfrom = scene_unix_dgram_recvfrom(sc)
    u.settimeout(60.0)
    return u, recvfrom


def scene_recvmsg_timeout(sc: Scene) -> tuple[Any, Callable[[], Any]]:
    a, b = S.socketpair()
    sc.own(a)
    sc.own(b)
    a.settimeout(60.0)
    sc.unblock = lambda: b.sendall(b"unblock")
    return a, lambda: a.recvmsg(100, socket.CMSG_SPACE(4))


SCENES = {
    "recv-blocking-in-kernel": scene_recv_blocking,
    "recv-timeout-in-poll": scene_recv_timeout,
    "recv_into-blocking": scene_recv_into_blocking,
    "accept-blocking": scene_accept_blocking,
    "accept-timeout": scene_accept_timeout,
    "sendall-full-blocking": scene_sendall_blocking,
    "sendall-full-timeout": scene_sendall_timeout,
    "send-full-tcp-blocking": scene_send_full_blocking,
    "udp-recvfrom-unconnected-blocking": scene_udp_recvfrom_blocking,
    "udp-recvfrom-unconnected-timeout": scene_udp_recvfrom_timeout,
    "unix-stream-recv": scene_unix_stream_recv,
    "unix-accept": scene_unix_accept,
    "unix-dgram-recvfrom": scene_unix_dgram_recvfrom,
    "unix-dgram-recvfrom-timeout": scene_unix_dgram_recvfrom_timeout,
    "recvmsg-timeout": scene_recvmsg_timeout,
}


@pytest.fixture
def short_tmp(tmp_path: Any) -> str:
    """A directory whose paths fit in sockaddr_un (108 bytes)."""
    path = str(tmp_path)
    if len(path) > 80:  # pragma: no cover - a deep tmp dir
        pytest.skip("tmp_path too long for Unix socket paths")
    return path


@pytest.mark.parametrize("scene", list(SCENES))
def test_close_from_another_thread_wakes_a_blocked_thread(scene: str, short_tmp: str) -> None:
    with ExitStack() as stack:
        sc = Scene(stack, short_tmp)
        sock, call = SCENES[scene](sc)
        blocked = Blocked(call)
        try:
            settle(sock)
            assert blocked.thread.is_alive(), f"did not block: {blocked.result!r} {blocked.error!r}"
            start = time.monotonic()
            sock.close()
            woke = blocked.join(PROMPT)
            elapsed = time.monotonic() - start
            assert woke, f"close() did not wake the thread blocked in {scene}"
            if sc.partial_send is not None and blocked.error is None:
                assert 0 < blocked.result < sc.partial_send
                with pytest.raises(OSError) as info:
                    sock.send(b"x")
                assert info.value.errno == errno.EBADF
            else:
                assert_ebadf(blocked)
            assert elapsed < PROMPT
            assert sock.fileno() == -1
        finally:
            if blocked.thread.is_alive():  # a failure: unblock it so no thread is left behind
                try:
                    sc.unblock()
                except OSError:
                    pass
                blocked.join(JOIN)


@pytest.mark.parametrize("timeout", [None, 60.0])
def test_a_thread_woken_by_close_already_finds_the_socket_closed(timeout: float | None) -> None:
    """The woken thread's EBADF and ``fileno() == -1`` agree: close() detaches the fd
    before it shuts the socket down to wake the thread (it used to be the other way
    round, so a woken thread could still see the old number for a moment)."""
    for _ in range(30):
        sock = S.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((LOOPBACK, 0))
        sock.settimeout(timeout)
        seen: list[int] = []

        def read(sock: Any = sock, seen: list[int] = seen) -> None:
            try:
                sock.recvfrom(100)
            except OSError:
                seen.append(sock.fileno())

        thread = threading.Thread(target=read)
        thread.start()
        time.sleep(0.002)  # races both ways: sometimes before the thread blocks
        sock.close()
        thread.join(JOIN)
        assert not thread.is_alive()
        assert seen == [-1]


@pytest.mark.parametrize("timeout", [None, 60.0])
def test_close_wakes_a_reader_and_a_writer_blocked_on_one_socket(timeout: float | None) -> None:
    a, b = S.socketpair()
    with b:
        a.settimeout(timeout)
        fill(a)
        reader = Blocked(lambda: a.recv(10))
        writer = Blocked(lambda: a.sendall(b"x" * (1 << 20)))
        settle(a, 2)
        a.close()
        for blocked in (reader, writer):
            ok = blocked.join(PROMPT)
            if not ok:  # pragma: no cover - a failure: free the thread before failing
                b.shutdown(socket.SHUT_RDWR)
                blocked.join(JOIN)
            assert ok, "close() did not wake every thread"
            assert_ebadf(blocked)


@pytest.mark.parametrize("timeout", [None, 60.0])
def test_close_without_blocked_threads_does_not_shut_down_the_peer(
    timeout: float | None,
) -> None:
    """close() shuts the connection down only to wake blocked threads; a plain close
    of a dup leaves the connection (shared with the other copy) alone."""
    a, b = S.socketpair()
    with b:
        a.settimeout(timeout)
        c = a.dup()
        with c:
            assert c.gettimeout() == timeout
            a.close()
            assert c.fileno() != -1
            c.sendall(b"dup alive")
            b.settimeout(5.0)
            assert b.recv(100) == b"dup alive"
            b.sendall(b"back")
            c.settimeout(5.0)
            assert c.recv(100) == b"back"


@pytest.mark.parametrize("timeout", [None, 60.0])
def test_closing_one_copy_leaves_a_thread_blocked_on_the_dup_blocked(
    timeout: float | None,
) -> None:
    a, b = S.socketpair()
    with b:
        a.settimeout(timeout)
        with a.dup() as c:
            reader = Blocked(lambda: c.recv(100))
            settle(c)
            a.close()  # nobody is blocked on *a*: no shutdown of the shared connection
            time.sleep(SETTLE)
            assert reader.thread.is_alive(), f"woken by the other copy: {reader.error!r}"
            b.sendall(b"for the dup")
            assert reader.join(JOIN)
            assert reader.error is None and reader.result == b"for the dup"


def test_fd_reuse_after_close_does_not_reach_the_woken_thread() -> None:
    """The woken thread raises EBADF; it never reads from a new socket on the same fd.

    Blocking mode: the thread waits in recv(), which holds the socket itself, not
    its fd number. (Timeout mode waits in poll(), which looks the number up again
    when it wakes: see the two deterministic tests below.)
    """
    a, b = S.socketpair()
    with b:
        reader = Blocked(lambda: a.recv(100))
        settle(a)
        a.close()
        c, d = S.socketpair()  # most likely reuses fd
        with c, d:
            for sock in (c, d):
                sock.settimeout(5.0)
            c.sendall(b"to d")
            d.sendall(b"to c")
            ok = reader.join(PROMPT)
            if not ok:  # pragma: no cover - a failure: free the thread
                b.shutdown(socket.SHUT_RDWR)
                reader.join(JOIN)
            assert ok
            assert_ebadf(reader)
            assert c.recv(100) == b"to c"  # the new pair got all its data
            assert d.recv(100) == b"to d"


@pytest.mark.parametrize("timeout", [None, 60.0])
def test_close_racing_a_thread_entering_a_blocking_call(timeout: float | None) -> None:
    """Interleaving, made deterministic: close() has looked for blocked threads (none),
    then a reader enters recv() in the kernel, then close() closes the descriptor.

    On Linux closing an fd does not wake a thread blocked on it (in recv() in
    blocking mode, in poll() in timeout mode), so the reader hangs until data
    comes. After it registers the thread as blocked, ``_call`` must re-check
    ``_closing`` (close() sets it before it looks at the blocked threads).
    """
    a, b = S.socketpair()
    a.settimeout(timeout)
    raw = a._sock
    go, entering = threading.Event(), threading.Event()

    class RacingRaw:
        def __getattr__(self, name: str) -> Any:
            return getattr(raw, name)

        def recv(self, *args: Any) -> Any:
            entering.set()
            return raw.recv(*args)

        def close(self) -> None:
            go.set()  # close() found no blocked thread: let the reader in now
            entering.wait(1.0)
            time.sleep(0.1)  # the reader is (most likely) in the kernel by now
            raw.close()

    a._sock = RacingRaw()  # type: ignore[assignment]
    with b:
        reader = Blocked(lambda: go.wait(JOIN) and a.recv(100))
        a.close()
        ok = reader.join(2.0)
        if not ok:  # free the thread: data on the peer wakes the orphaned recv
            b.sendall(b"unblock")
            reader.join(JOIN)
        assert raw.fileno() == -1
        assert ok, "close() left a thread blocked (recv or poll) on a closed fd"
        assert_ebadf(reader)


def test_fd_reused_between_the_fd_lookup_and_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """Interleaving, made deterministic: a thread in timeout-mode recv has looked up
    its fd and is about to poll it; another thread closes the socket and opens a
    new one, which gets the same fd number. The first thread must still wake
    promptly with EBADF (not wait out its 60 s on a stranger's socket).
    """
    a, b = S.socketpair()
    a.settimeout(60.0)
    fd = a.fileno()
    about_to_poll, reused = threading.Event(), threading.Event()
    real_wait = PollWaiter.wait

    async def wait(self: PollWaiter, wfd: int, event: int, deadline: float | None) -> None:
        if wfd == fd and not about_to_poll.is_set():
            about_to_poll.set()
            reused.wait(JOIN)
        await real_wait(self, wfd, event, deadline)

    monkeypatch.setattr(PollWaiter, "wait", wait)
    with b:
        reader = Blocked(lambda: a.recv(100))
        assert about_to_poll.wait(JOIN)
        a.close()
        c, d = S.socketpair()
        with c, d:
            reused.set()
            ok = reader.join(2.0)
            if not ok:  # free the thread: make the stranger's socket readable
                c.sendall(b"x")
                d.sendall(b"x")
                reader.join(JOIN)
            assert ok, "the woken thread waited on a reused fd"
            assert_ebadf(reader)


def _reuse_while_the_woken_poller_looks_again() -> bool:
    """One round: True if the woken reader finished promptly."""
    a, b = S.socketpair()
    with b:
        a.settimeout(60.0)

        def read() -> bytes:
            # An idle-policy thread never preempts the closing thread when it wakes up.
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            return a.recv(100)

        reader = Blocked(read)
        settle(a)
        if reader.error is not None:  # pragma: no cover - SCHED_IDLE refused
            pytest.skip(f"cannot use SCHED_IDLE here: {reader.error!r}")
        a.close()  # shutdown() wakes the reader; it runs only once this thread blocks
        c, d = S.socketpair()  # the fd number of a, reused
        with c, d:
            time.sleep(0.05)  # the reader's poll() looks at the number again: an idle socket
            d.sendall(b"to c")  # now the new socket is readable: poll() does not watch it
            c.sendall(b"to d")
            ok = reader.join(1.0)
            if not ok:  # free the thread: wake the old socket's wait queue
                b.shutdown(socket.SHUT_RDWR)
                reader.join(JOIN)
            assert_ebadf(reader)
            return ok


@pytest.mark.skipif(
    not (hasattr(os, "sched_setaffinity") and hasattr(os, "SCHED_IDLE")),
    reason="needs sched_setaffinity and SCHED_IDLE (Linux)",
)
def test_fd_reused_while_the_woken_poller_looks_again() -> None:
    """The kernel's side of fd reuse, made deterministic.

    After a wake-up, poll() evaluates each fd *number* again, but it registered
    on wait queues only in its first pass. If close() has already closed the
    number and a new socket got it, poll() finds that socket not ready and sleeps
    on, on the old socket's queue only: data for the new socket does not wake it,
    and the thread waits out its whole timeout. One CPU, and an idle-policy reader,
    make the order certain: shutdown wakes the reader, the number is reused, then
    the reader looks. The fd must stay open until the last blocked thread leaves.
    """
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(old)})  # this thread, and the reader it starts
    try:
        rounds = [_reuse_while_the_woken_poller_looks_again() for _ in range(3)]
    finally:
        os.sched_setaffinity(0, old)
    assert all(rounds), f"the woken thread slept on a reused fd in {rounds.count(False)}/3"


def test_close_while_closing_from_two_threads() -> None:
    """Two threads close at once while a third is blocked: no error, the third wakes."""
    for _ in range(20):
        a, b = S.socketpair()
        with b:
            a.settimeout(60.0)
            reader = Blocked(lambda a=a: a.recv(1))
            time.sleep(0.01)
            closers = [Blocked(a.close) for _ in range(2)]
            for closer in closers:
                assert closer.join(PROMPT) and closer.error is None, repr(closer.error)
            if not reader.join(PROMPT):  # pragma: no cover - a failure: free the thread
                b.sendall(b"x")
                reader.join(JOIN)
                pytest.fail("reader not woken")
            assert_ebadf(reader)


# -- EINTR -----------------------------------------------------------------------------


@contextmanager
def alarm_every(interval: float, handler: Callable[[int, FrameType | None], Any]) -> Iterator[None]:
    """SIGALRM every ``interval`` s; restore the previous handler and timer afterwards
    (pytest-timeout's own alarm included)."""
    old_handler = signal.signal(signal.SIGALRM, handler)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, interval, interval)
    start = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_delay:
            left = max(old_delay - (time.monotonic() - start), 0.001)
            signal.setitimer(signal.ITIMER_REAL, left, old_interval)


pytestmark_eintr = pytest.mark.skipif(
    not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread(),
    reason="needs setitimer in the main thread",
)


@pytestmark_eintr
@pytest.mark.parametrize("timeout", [None, 30.0])
def test_eintr_during_recv_is_retried(timeout: float | None) -> None:
    signals = []
    a, b = S.socketpair()
    with a, b:
        a.settimeout(timeout)
        sender = Blocked(lambda: (time.sleep(0.3), b.sendall(b"after signals")))
        with alarm_every(0.01, lambda *_: signals.append(1)):
            data = a.recv(100)
        assert sender.join(JOIN)
        assert data == b"after signals"
        assert len(signals) >= 2  # it really was interrupted


@pytestmark_eintr
@pytest.mark.parametrize("timeout", [None, 30.0])
def test_eintr_during_accept_is_retried(timeout: float | None) -> None:
    signals = []
    with S.create_server((LOOPBACK, 0)) as srv:
        srv.settimeout(timeout)
        addr = srv.getsockname()
        client: list[socket.socket] = []
        connector = Blocked(
            lambda: (time.sleep(0.3), client.append(socket.create_connection(addr, 5.0)))
        )
        with alarm_every(0.01, lambda *_: signals.append(1)):
            conn, _ = srv.accept()
        conn.close()
        assert connector.join(JOIN)
        client[0].close()
        assert len(signals) >= 2


@pytestmark_eintr
@pytest.mark.parametrize("timeout", [None, 30.0])
def test_eintr_during_sendall_of_several_mb_is_retried(timeout: float | None) -> None:
    data = os.urandom(8 << 20)
    signals = []
    a, b = S.socketpair()
    with a, b:
        a.settimeout(timeout)

        def slow_reader() -> str:
            digest = hashlib.sha256()
            got = 0
            while got < len(data):
                chunk = b.recv(32768)
                assert chunk
                got += len(chunk)
                digest.update(chunk)
                time.sleep(0.0005)
            return digest.hexdigest()

        reader = Blocked(slow_reader)
        with alarm_every(0.01, lambda *_: signals.append(1)):
            a.sendall(data)
        assert reader.join(JOIN)
        assert reader.error is None, repr(reader.error)
        assert reader.result == hashlib.sha256(data).hexdigest()
        assert len(signals) >= 2


@pytestmark_eintr
def test_eintr_during_a_timed_wait_keeps_the_deadline() -> None:
    """Signals restart poll() with the time left, not the whole timeout again."""
    a, b = S.socketpair()
    with a, b:
        a.settimeout(0.5)
        start = time.monotonic()
        with alarm_every(0.01, lambda *_: None), pytest.raises(TimeoutError, match="timed out"):
            a.recv(100)
        assert time.monotonic() - start < 5.0


class Boom(Exception):
    pass


def raising_handler(signum: int, frame: FrameType | None) -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)
    raise Boom


@pytestmark_eintr
@pytest.mark.parametrize("mod", [socket, S], ids=["stdlib", "sync"])
@pytest.mark.parametrize("timeout", [None, 30.0])
@pytest.mark.parametrize("call", ["recv", "accept", "sendall"])
def test_a_raising_signal_handler_propagates(
    mod: ModuleType, timeout: float | None, call: str
) -> None:
    a, b = mod.socketpair()
    with a, b, mod.create_server((LOOPBACK, 0)) as srv:
        a.settimeout(timeout)
        srv.settimeout(timeout)
        if call == "sendall":
            fill(a)
        calls = {
            "recv": lambda: a.recv(100),
            "accept": srv.accept,
            "sendall": lambda: a.sendall(b"x" * (1 << 20)),
        }
        start = time.monotonic()
        with alarm_every(0.05, raising_handler), pytest.raises(Boom):
            calls[call]()
        assert time.monotonic() - start < 5.0
        # the socket is still usable afterwards
        drain(b)
        b.sendall(b"ok")
        a.settimeout(5.0)
        assert a.recv(10) == b"ok"
