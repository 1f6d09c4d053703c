"""serve_tcp / serve_unix on both faces: serving, caps, errors, shutdown, EMFILE.

The async face's tests run one body on each backend: the loop matrix and trio (see
``conftest.py``; under trio the server's tasks live in a system task, docs/trio.md)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import resource
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from _async_helpers import Tasks, bounded, cancelled

import asocket
import asocket.sync
from asocket import _listeners, _serve_async, _serve_policy
from asocket._waiters.current import current


async def echo(sock: asocket.socket, addr: Any) -> None:
    while data := await sock.recv(4096):
        await sock.sendall(data)


def sync_echo(sock: asocket.sync.socket, addr: Any) -> None:
    while data := sock.recv(4096):
        sock.sendall(data)


async def roundtrip(port: int, payload: bytes, host: str = "127.0.0.1") -> bytes:
    sock = await asocket.create_connection((host, port), timeout=5)
    with sock:
        await sock.sendall(payload)
        return await sock.recv(4096)


def new_server(
    listeners: list[Any], handler: Any, max_connections: int | None, grace_period: float | None
) -> asocket.Server:
    """A server on ``listeners`` for the running library (asyncio's tasks or trio's system
    task), as ``serve_tcp`` makes it: ``asocket.Server`` is not instantiated directly."""
    return _serve_async._kind(current())(listeners, handler, max_connections, grace_period)


async def ignore_cancellation(until: anyio.Event) -> None:
    """A handler's body that ignores the server's cancellation until ``until`` is set: it
    swallows asyncio's ``CancelledError`` (edge-triggered: the next wait waits); trio's
    cancellation is level-triggered, so there the shield is what keeps it waiting."""
    while not until.is_set():
        with anyio.CancelScope(shield=True):
            try:
                await until.wait()
            except anyio.get_cancelled_exc_class():
                pass


@contextlib.contextmanager
def fd_table_full() -> Iterator[list[int]]:
    """Fill the descriptor table under a lowered RLIMIT_NOFILE; restore everything after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
    fillers: list[int] = []
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 1, hard))
    try:
        while True:
            try:
                fillers.append(os.dup(0))
            except OSError:
                break
        yield fillers
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- async face ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_serve_tcp_serves_concurrent_clients() -> None:
    async with await asocket.serve_tcp(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with Tasks() as tasks:
            clients = [tasks.spawn(roundtrip(port, b"client %d" % i)) for i in range(5)]
            replies = [await client.join(10) for client in clients]
        assert replies == [b"client %d" % i for i in range(5)]


@pytest.mark.anyio
async def test_serve_tcp_localhost_listens_on_each_address_same_port() -> None:
    async with await asocket.serve_tcp(echo, "localhost", 0) as server:
        assert len({s.getsockname()[1] for s in server.sockets}) == 1
        for sock in server.sockets:
            host, port = sock.getsockname()[:2]
            assert await bounded(roundtrip(port, b"x", host), 5) == b"x"


@pytest.fixture
def port_taken_on_second_address(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """``localhost`` is ``::1`` then ``127.0.0.1`` (from the literals, no lookup), and the
    first port the kernel picks is taken on 127.0.0.1, as when a connection there is in
    TIME_WAIT. Returns the addresses each listener was asked for, in order."""
    guard = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, family: int = 0, *args: Any) -> Any:
        if host == "localhost" and family == socket.AF_UNSPEC:
            return guard("::1", port, socket.AF_INET6, *args) + guard(
                "127.0.0.1", port, socket.AF_INET, *args
            )
        return guard(host, port, family, *args)

    real = _listeners.create_server
    asked: list[Any] = []

    async def create_server(new: Any, waiter: Any, address: Any, *args: Any) -> Any:
        asked.append(address)
        if len(asked) == 2:
            raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))
        return await real(new, waiter, address, *args)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(_listeners, "create_server", create_server)
    return asked


@pytest.mark.anyio
async def test_serve_tcp_port_0_picks_again_when_another_address_has_the_port(
    port_taken_on_second_address: list[Any],
) -> None:
    async with await asocket.serve_tcp(echo, "localhost", 0) as server:
        ports = {s.getsockname()[1] for s in server.sockets}
        assert len(server.sockets) == 2 and len(ports) == 1
        assert [a[0] for a in port_taken_on_second_address] == ["::1", "127.0.0.1"] * 2
        for sock in server.sockets:
            host, port = sock.getsockname()[:2]
            assert await bounded(roundtrip(port, b"x", host), 5) == b"x"


def test_sync_serve_tcp_port_0_picks_again_when_another_address_has_the_port(
    port_taken_on_second_address: list[Any],
) -> None:
    with asocket.sync.serve_tcp(sync_echo, "localhost", 0) as server:
        assert len(server.sockets) == 2
        assert len({s.getsockname()[1] for s in server.sockets}) == 1
        assert len(port_taken_on_second_address) == 4


@pytest.mark.anyio
async def test_serve_tcp_fixed_port_in_use_is_not_retried(
    port_taken_on_second_address: list[Any],
) -> None:
    with asocket.sync.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OSError) as info:
        await asocket.serve_tcp(echo, "localhost", port)
    assert info.value.errno == errno.EADDRINUSE and len(port_taken_on_second_address) == 2


@pytest.mark.anyio
async def test_serve_tcp_port_0_gives_up_after_port_retries(
    monkeypatch: pytest.MonkeyPatch, port_taken_on_second_address: list[Any]
) -> None:
    real = _listeners.create_server

    async def always_taken(new: Any, waiter: Any, address: Any, *args: Any) -> Any:
        if address[0] == "127.0.0.1":
            raise OSError(errno.EADDRINUSE, os.strerror(errno.EADDRINUSE))
        return await real(new, waiter, address, *args)

    monkeypatch.setattr(_listeners, "create_server", always_taken)
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(OSError) as info:
        await asocket.serve_tcp(echo, "localhost", 0)
    assert info.value.errno == errno.EADDRINUSE
    assert len(os.listdir("/proc/self/fd")) == before  # every ::1 listener closed


@pytest.mark.anyio
async def test_handler_exception_is_logged_with_peer_and_server_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(sock: asocket.socket, addr: Any) -> None:
        if await sock.recv(10) == b"boom":
            raise ValueError("handler failed")
        await sock.sendall(b"fine")

    async with await asocket.serve_tcp(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        with caplog.at_level(logging.ERROR, logger="asocket"):
            assert await bounded(roundtrip(port, b"boom"), 5) == b""
        assert await bounded(roundtrip(port, b"ok"), 5) == b"fine"
    records = [r for r in caplog.records if "handler for" in r.getMessage()]
    assert records and "127.0.0.1" in records[0].getMessage()


@pytest.mark.anyio
async def test_max_connections_stops_accepting_while_full() -> None:
    release = anyio.Event()
    running: list[int] = []
    peak = 0

    async def handler(sock: asocket.socket, addr: Any) -> None:
        nonlocal peak
        running.append(1)
        peak = max(peak, len(running))
        await release.wait()
        await sock.sendall(b"done")
        running.pop()

    async with await asocket.serve_tcp(handler, "127.0.0.1", 0, max_connections=2) as server:
        port = server.sockets[0].getsockname()[1]
        clients = [
            await asocket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(4)
        ]
        await anyio.sleep(0.2)
        assert server.active_connections == 2  # the other two wait in the backlog
        release.set()
        for client in clients:
            with client:
                assert await bounded(client.recv(10), 5) == b"done"
    assert peak == 2


@pytest.mark.anyio
async def test_graceful_shutdown_cancels_handlers_after_grace() -> None:
    cancelled = anyio.Event()

    async def handler(sock: asocket.socket, addr: Any) -> None:
        try:
            await anyio.sleep(60)
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise

    server = await asocket.serve_tcp(handler, "127.0.0.1", 0, grace_period=0.1)
    port = server.sockets[0].getsockname()[1]
    client = await asocket.create_connection(("127.0.0.1", port), timeout=5)
    with client:
        await anyio.sleep(0.1)
        assert server.active_connections == 1
        server.close()
        await bounded(server.wait_closed(), 5)
        assert cancelled.is_set()
        assert all(s.fileno() == -1 for s in server.sockets)
        assert await bounded(client.recv(10), 5) == b""  # the server closed it


@pytest.mark.anyio
async def test_serve_unix(tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")
    async with await asocket.serve_unix(echo, path):
        sock = asocket.socket(asocket.AF_UNIX, asocket.SOCK_STREAM)
        with sock:
            await bounded(sock.connect(path), 5)
            await sock.sendall(b"unix")
            assert await bounded(sock.recv(10), 5) == b"unix"
    assert not os.path.exists(path)


@pytest.mark.anyio
async def test_emfile_backs_off_keeps_listener_and_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with await asocket.serve_tcp(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        clients = [asocket.socket() for _ in range(3)]
        try:
            with caplog.at_level(logging.ERROR, logger="asocket"):
                with fd_table_full():
                    for client in clients:  # connect() needs no new descriptor
                        await bounded(client.connect(("127.0.0.1", port)), 5)
                    await anyio.sleep(0.4)  # accept() fails with EMFILE meanwhile
                    assert server.sockets[0].fileno() != -1
                # Descriptors are back: the waiting connections are served.
                for client in clients:
                    await client.sendall(b"back")
                    assert await bounded(client.recv(10), 5) == b"back"
        finally:
            for client in clients:
                client.close()
        failures = [r for r in caplog.records if "accept() on" in r.getMessage()]
        assert len(failures) == 1  # logged once per episode, not per retry
        assert "out of resources" in failures[0].getMessage()
        assert await bounded(roundtrip(port, b"again"), 5) == b"again"


# -- sync face ----------------------------------------------------------------------


def test_sync_serve_tcp_threads() -> None:
    with asocket.sync.serve_tcp(sync_echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        results: list[bytes] = []

        def client(i: int) -> None:
            with asocket.sync.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"t%d" % i)
                results.append(sock.recv(10))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert sorted(results) == sorted(b"t%d" % i for i in range(5))


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="needs pthread_sigmask")
def test_sync_server_threads_leave_process_signals_to_the_main_thread() -> None:
    """The accepting and handler threads block SIGINT and SIGTERM, so the kernel hands a
    Ctrl-C to the main thread (blocked in serve_forever(), say), which takes it; the
    caller's own mask is left as it was."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    masks: list[set[signal.Signals]] = []

    def handler(sock: asocket.sync.socket, addr: Any) -> None:
        masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, []))
        sock.sendall(b"done")

    with asocket.sync.serve_tcp(handler, "127.0.0.1", 0) as server:
        assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before
        with asocket.sync.create_connection(server.sockets[0].getsockname(), timeout=5) as c:
            assert c.recv(10) == b"done"
        accepters = [t for t in threading.enumerate() if t.name.startswith("accept ")]
        assert accepters
        for thread in accepters:
            assert thread.native_id is not None
            assert _blocked_in(thread.native_id) >= {signal.SIGINT, signal.SIGTERM}
    assert masks and masks[0] >= {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    assert signal.SIGSEGV not in masks[0]


def _blocked_in(tid: int) -> set[int]:
    """The signals thread ``tid`` of this process blocks (Linux: /proc)."""
    status = Path(f"/proc/self/task/{tid}/status")
    if not status.exists():
        pytest.skip("no /proc/self/task")
    line = next(x for x in status.read_text().splitlines() if x.startswith("SigBlk:"))
    bits = int(line.split()[1], 16)
    return {n for n in range(1, 65) if bits >> (n - 1) & 1}


def test_sync_max_connections_and_grace_closes_connections() -> None:
    started = threading.Event()

    def handler(sock: asocket.sync.socket, addr: Any) -> None:
        started.set()
        sock.recv(10)  # blocks until the server closes the connection

    server = asocket.sync.serve_tcp(handler, "127.0.0.1", 0, max_connections=1, grace_period=0.1)
    port = server.sockets[0].getsockname()[1]
    address = ("127.0.0.1", port)
    with (
        asocket.sync.create_connection(address, timeout=5) as a,
        asocket.sync.create_connection(address, timeout=5),
    ):
        assert started.wait(5)
        time.sleep(0.1)
        assert server.active_connections == 1
        t0 = time.monotonic()
        server.close()
        server.wait_closed()
        assert time.monotonic() - t0 < 5
        assert server.active_connections == 0
        assert a.recv(10) == b""


def test_sync_serve_unix(tmp_path: Path) -> None:
    path = str(tmp_path / "echo.sock")
    with (
        asocket.sync.serve_unix(sync_echo, path),
        asocket.sync.socket(asocket.sync.AF_UNIX, asocket.sync.SOCK_STREAM) as sock,
    ):
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(b"unix")
        assert sock.recv(10) == b"unix"
    assert not os.path.exists(path)


def test_max_connections_must_be_positive() -> None:
    with pytest.raises(ValueError):
        asocket.sync.serve_tcp(sync_echo, "127.0.0.1", 0, max_connections=0)
    with pytest.raises(ValueError):
        asyncio.run(asocket.serve_tcp(echo, "127.0.0.1", 0, max_connections=-1))


# -- the accept policy both faces share ----------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_accept_policy_backoff_episode_and_recovery(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    policy = _serve_policy.AcceptPolicy("L", clock)
    emfile = OSError(errno.EMFILE, "Too many open files")
    with caplog.at_level(logging.WARNING, logger="asocket"):
        assert policy.failed(OSError(errno.EBADF, "x")) is None
        assert policy.failed(OSError(errno.ECONNABORTED, "x")) == 0.0
        delays = []
        for _ in range(7):
            delays.append(policy.failed(emfile))
            clock.now += 1
        assert delays == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
        policy.accepted()  # churn: one success, then failing again at once
        assert policy.failed(emfile) == 0.05  # a success resets the back-off...
        policy.accepted()
        clock.now += 0.5
        policy.accepted()
        clock.now += 0.6
        policy.accepted()  # ...and QUIET seconds of successes end the episode
        assert policy.failed(emfile) == 0.05  # a new episode
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "accept() on 'L' failed (out of resources): [Errno 24] Too many open files; "
        "retrying with back-off",
        "accept() on 'L' works again, after 8 failed over 7.0 s",
        "accept() on 'L' failed (out of resources): [Errno 24] Too many open files; "
        "retrying with back-off",
    ]
    assert [r.levelno for r in caplog.records] == [logging.ERROR, logging.WARNING, logging.ERROR]


def test_accept_policy_persistent_per_connection_error_backs_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy = _serve_policy.AcceptPolicy("L", FakeClock())
    eperm = OSError(errno.EPERM, "Operation not permitted")
    with caplog.at_level(logging.WARNING, logger="asocket"):
        assert {policy.failed(eperm) for _ in range(_serve_policy.PER_CONNECTION_STREAK)} == {0.0}
        assert policy.failed(eperm) == 0.05
        assert policy.failed(eperm) == 0.1
        policy.accepted()
        assert policy.failed(eperm) == 0.0  # a success ends the streak
    assert len(caplog.records) == 1
    assert "100 per-connection errors in a row" in caplog.records[0].getMessage()


def test_accept_policy_unexpected_exception_logged_with_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy = _serve_policy.AcceptPolicy("L", FakeClock())
    with caplog.at_level(logging.WARNING, logger="asocket"):
        assert policy.failed(RuntimeError("bug")) == 0.05
        assert policy.failed(OSError(errno.EINVAL, "Invalid argument")) == 0.1
    [record] = caplog.records
    assert "unexpected error" in record.getMessage() and record.exc_info is not None


# -- async face: listeners, caps, failures, shutdown --------------------------------


@pytest.mark.skipif(not asocket.has_dualstack_ipv6(), reason="no dual-stack IPv6 here")
@pytest.mark.anyio
async def test_serve_tcp_host_none_is_one_dual_stack_socket() -> None:
    async with await asocket.serve_tcp(echo, None, 0) as server:
        [sock] = server.sockets
        assert sock.family == asocket.AF_INET6
        assert sock.getsockopt(asocket.IPPROTO_IPV6, asocket.IPV6_V6ONLY) == 0
        assert sock.getsockopt(asocket.SOL_SOCKET, asocket.SO_REUSEADDR) != 0
        port = sock.getsockname()[1]
        assert await bounded(roundtrip(port, b"v4"), 5) == b"v4"
        assert await bounded(roundtrip(port, b"v6", "::1"), 5) == b"v6"


@pytest.mark.anyio
async def test_serve_tcp_sets_so_reuseaddr() -> None:
    async with await asocket.serve_tcp(echo, "127.0.0.1", 0) as server:
        assert server.sockets[0].getsockopt(asocket.SOL_SOCKET, asocket.SO_REUSEADDR) != 0


@pytest.mark.anyio
async def test_max_connections_shared_by_listeners() -> None:
    release = anyio.Event()

    async def handler(sock: asocket.socket, addr: Any) -> None:
        await release.wait()
        await sock.sendall(b"done")

    listeners = [await asocket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    async with new_server(listeners, handler, 1, 5.0) as server:
        ports = [s.getsockname()[1] for s in listeners]
        # An idle first listener must not keep the only slot from the second.
        b = await asocket.create_connection(("127.0.0.1", ports[1]), timeout=5)
        await anyio.sleep(0.2)
        assert server.active_connections == 1
        a = await asocket.create_connection(("127.0.0.1", ports[0]), timeout=5)
        await anyio.sleep(0.2)
        assert server.active_connections == 1  # the cap holds across listeners
        release.set()
        for client in (a, b):
            with client:
                assert await bounded(client.recv(10), 5) == b"done"


class FlakyListener(asocket.socket):
    """A listener whose accept() raises the queued errors first."""

    errors: list[BaseException]
    calls: int

    async def accept(self) -> tuple[asocket.socket, Any]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return await super().accept()


async def flaky_listener(*errors: BaseException) -> FlakyListener:
    plain = await asocket.create_server(("127.0.0.1", 0))
    listener = FlakyListener(fileno=plain.detach())
    listener.errors, listener.calls = list(errors), 0
    return listener


@pytest.mark.anyio
async def test_unexpected_accept_exception_is_logged_and_accepting_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listener = await flaky_listener(RuntimeError("accept bug"))
    with caplog.at_level(logging.WARNING, logger="asocket"):
        async with new_server([listener], echo, None, 5.0):
            port = listener.getsockname()[1]
            assert await bounded(roundtrip(port, b"still"), 5) == b"still"
    [record] = [r for r in caplog.records if "accept() on" in r.getMessage()]
    assert "unexpected error" in record.getMessage() and record.exc_info is not None


@pytest.mark.anyio
async def test_persistent_per_connection_error_is_not_a_busy_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    eperm = OSError(errno.EPERM, "Operation not permitted")
    listener = await flaky_listener(*[eperm] * 100_000)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    with caplog.at_level(logging.WARNING, logger="asocket"):
        async with new_server([listener], echo, None, 5.0), anyio.create_task_group() as tg:
            tg.start_soon(ticker)
            await anyio.sleep(0.5)
            tg.cancel_scope.cancel()
    assert listener.calls < _serve_policy.PER_CONNECTION_STREAK + 20  # backed off, not spinning
    assert ticks > 5  # the loop kept running meanwhile
    assert len([r for r in caplog.records if "accept() on" in r.getMessage()]) == 1


@pytest.mark.anyio
async def test_close_during_backoff_is_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_serve_policy, "BACKOFF_FIRST", 30.0)
    monkeypatch.setattr(_serve_policy, "BACKOFF_MAX", 30.0)
    listener = await flaky_listener(OSError(errno.EMFILE, "Too many open files"))
    server = new_server([listener], echo, None, 5.0)
    await anyio.sleep(0.1)  # the accept loop now sleeps 30 s
    assert listener.calls == 1
    server.close()
    await bounded(server.wait_closed(), 5)


@pytest.mark.anyio
async def test_handler_ignoring_cancellation_does_not_hang_wait_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = anyio.Event()

    async def stubborn(sock: asocket.socket, addr: Any) -> None:
        await ignore_cancellation(stop)

    server = await asocket.serve_tcp(stubborn, "127.0.0.1", 0, grace_period=0.1)
    port = server.sockets[0].getsockname()[1]
    with await asocket.create_connection(("127.0.0.1", port), timeout=5) as client:
        await anyio.sleep(0.1)
        server.close()
        with caplog.at_level(logging.WARNING, logger="asocket"):
            await bounded(server.wait_closed(), 5)
        assert await bounded(client.recv(10), 5) == b""  # its connection is closed
    [record] = caplog.records
    assert "left running" in record.getMessage() and "127.0.0.1" in record.getMessage()
    stop.set()  # the abandoned handler ends


@pytest.mark.anyio
async def test_serve_forever_cancelled_closes_the_server() -> None:
    ended = anyio.Event()

    async def handler(sock: asocket.socket, addr: Any) -> None:
        try:
            await sock.recv(10)
        finally:
            ended.set()

    server = await asocket.serve_tcp(handler, "127.0.0.1", 0, grace_period=0.1)
    port = server.sockets[0].getsockname()[1]
    async with Tasks() as tasks:
        task = tasks.spawn(server.serve_forever())
        with await asocket.create_connection(("127.0.0.1", port), timeout=5):
            await anyio.sleep(0.1)
            await cancelled(task)
    assert all(s.fileno() == -1 for s in server.sockets)
    await bounded(ended.wait())  # its handler was cancelled (when: the test below)


@pytest.mark.anyio
async def test_serve_forever_cancelled_waits_for_the_handlers() -> None:
    """Cancelled, serve_forever() does what wait_closed() does before it ends: the
    handlers have ended (after the grace period, cancelled) when it raises, even under
    a cancel scope that cancels again at every await (anyio's on asyncio)."""
    ended = anyio.Event()

    async def handler(sock: asocket.socket, addr: Any) -> None:
        try:
            await sock.recv(10)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.05)  # its clean-up takes a moment
            ended.set()

    server = await asocket.serve_tcp(handler, "127.0.0.1", 0, grace_period=0.1)
    port = server.sockets[0].getsockname()[1]
    async with Tasks() as tasks:
        task = tasks.spawn(server.serve_forever())
        with await asocket.create_connection(("127.0.0.1", port), timeout=5):
            await anyio.sleep(0.1)
            await cancelled(task)
            assert ended.is_set()
            assert server.active_connections == 0


@pytest.mark.anyio
async def test_cancelling_wait_closed_ends_the_grace_period_at_once() -> None:
    handler_cancelled = anyio.Event()

    async def handler(sock: asocket.socket, addr: Any) -> None:
        try:
            await sock.recv(10)
        except anyio.get_cancelled_exc_class():
            handler_cancelled.set()
            raise

    server = await asocket.serve_tcp(handler, "127.0.0.1", 0, grace_period=60)
    port = server.sockets[0].getsockname()[1]
    with await asocket.create_connection(("127.0.0.1", port), timeout=5) as client:
        await anyio.sleep(0.1)
        server.close()
        async with Tasks() as tasks:
            waiting = await tasks.start(server.wait_closed(), 0.1)  # in the grace period
            assert not handler_cancelled.is_set()
            t0 = time.monotonic()
            await cancelled(waiting)  # as a second Ctrl-C would: stop waiting for handlers
        await bounded(handler_cancelled.wait(), 5)
        assert await bounded(client.recv(10), 5) == b""  # closed with its handler
        assert time.monotonic() - t0 < 5
    assert server.active_connections == 0


@pytest.mark.anyio
async def test_close_clients_cancels_handlers_and_ends_the_grace_period() -> None:
    handlers_cancelled: list[Any] = []

    async def handler(sock: asocket.socket, addr: Any) -> None:
        try:
            while data := await sock.recv(10):
                await sock.sendall(data)
        except anyio.get_cancelled_exc_class():
            handlers_cancelled.append(addr)
            raise

    server = await asocket.serve_tcp(handler, "127.0.0.1", 0, grace_period=60)
    port = server.sockets[0].getsockname()[1]
    with await asocket.create_connection(("127.0.0.1", port), timeout=5) as first:
        await first.sendall(b"a")
        assert await first.recv(10) == b"a"
        server.close_clients()
        assert await bounded(first.recv(10), 5) == b""  # closed with its handler
        assert len(handlers_cancelled) == 1 and server.active_connections == 0
        # still accepting: close() stops that
        assert await bounded(roundtrip(port, b"b"), 5) == b"b"
    with await asocket.create_connection(("127.0.0.1", port), timeout=5) as second:
        await second.sendall(b"c")
        assert await second.recv(10) == b"c"
        server.close()
        async with Tasks() as tasks:
            waiting = await tasks.start(server.wait_closed(), 0.1)  # the 60 s grace period
            server.close_clients()  # as a second Ctrl-C would
            await waiting.join()
        assert await bounded(second.recv(10), 5) == b""
    assert len(handlers_cancelled) == 2


@pytest.mark.anyio
async def test_the_grace_period_is_given_once(caplog: pytest.LogCaptureFixture) -> None:
    release = anyio.Event()

    async def stubborn(sock: asocket.socket, addr: Any) -> None:
        await ignore_cancellation(release)

    server = await asocket.serve_tcp(stubborn, "127.0.0.1", 0, grace_period=60)
    port = server.sockets[0].getsockname()[1]
    try:
        with (
            caplog.at_level(logging.WARNING, logger="asocket"),
            await asocket.create_connection(("127.0.0.1", port), timeout=5),
        ):
            await anyio.sleep(0.1)
            server.close()
            async with Tasks() as tasks:
                await cancelled(await tasks.start(server.wait_closed(), 0.1))
            t0 = time.monotonic()
            await bounded(server.wait_closed(), 10)  # UNWIND (1 s), not 60 s again
            assert time.monotonic() - t0 < 5
    finally:
        release.set()
    assert any("left running" in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_emfile_recovery_is_logged(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_serve_policy, "QUIET", 0.1)
    async with await asocket.serve_tcp(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        client = asocket.socket()
        with client, caplog.at_level(logging.WARNING, logger="asocket"):
            with fd_table_full():
                await bounded(client.connect(("127.0.0.1", port)), 5)
                await anyio.sleep(0.2)
            await client.sendall(b"back")
            assert await bounded(client.recv(10), 5) == b"back"
            await anyio.sleep(0.15)
            assert await bounded(roundtrip(port, b"again"), 5) == b"again"
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "failed (out of resources)" in m]) == 1
    assert len([m for m in messages if "works again" in m]) == 1


# -- sync face: failures and shutdown -----------------------------------------------


def test_sync_handler_exception_is_logged_with_peer(caplog: pytest.LogCaptureFixture) -> None:
    def handler(sock: asocket.sync.socket, addr: Any) -> None:
        if sock.recv(10) == b"boom":
            raise ValueError("handler failed")
        sock.sendall(b"fine")

    with (
        caplog.at_level(logging.ERROR, logger="asocket"),
        asocket.sync.serve_tcp(handler, "127.0.0.1", 0) as server,
    ):
        address = ("127.0.0.1", server.sockets[0].getsockname()[1])
        with asocket.sync.create_connection(address, timeout=5) as sock:
            sock.sendall(b"boom")
            assert sock.recv(10) == b""
        with asocket.sync.create_connection(address, timeout=5) as sock:
            sock.sendall(b"ok")
            assert sock.recv(10) == b"fine"
    [record] = caplog.records
    assert "handler for ('127.0.0.1'" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is ValueError


@pytest.mark.skipif(not asocket.has_dualstack_ipv6(), reason="no dual-stack IPv6 here")
def test_sync_serve_tcp_host_none_is_dual_stack() -> None:
    with asocket.sync.serve_tcp(sync_echo, None, 0) as server:
        [sock] = server.sockets
        assert sock.getsockopt(asocket.IPPROTO_IPV6, asocket.IPV6_V6ONLY) == 0
        port = sock.getsockname()[1]
        for host in ("127.0.0.1", "::1"):
            with asocket.sync.create_connection((host, port), timeout=5) as client:
                client.sendall(b"hi")
                assert client.recv(10) == b"hi"


def test_sync_max_connections_shared_by_listeners() -> None:
    release = threading.Event()

    def handler(sock: asocket.sync.socket, addr: Any) -> None:
        release.wait(10)
        sock.sendall(b"done")

    listeners = [asocket.sync.create_server(("127.0.0.1", 0)) for _ in range(2)]
    with asocket.sync.ThreadedServer(listeners, handler, 1, 5.0) as server:
        clients = [
            asocket.sync.create_connection(("127.0.0.1", s.getsockname()[1]), timeout=5)
            for s in listeners
        ]
        time.sleep(0.2)
        assert server.active_connections == 1
        release.set()
        for client in clients:
            with client:
                assert client.recv(10) == b"done"


def test_sync_close_during_backoff_is_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_serve_policy, "BACKOFF_FIRST", 30.0)
    monkeypatch.setattr(_serve_policy, "BACKOFF_MAX", 30.0)
    server = asocket.sync.serve_tcp(sync_echo, "127.0.0.1", 0)
    client = asocket.sync.socket()
    with client, fd_table_full():  # the accepting thread gets EMFILE, then sleeps 30 s
        client.connect(server.sockets[0].getsockname())
        time.sleep(0.2)
    t0 = time.monotonic()
    server.close()
    server.wait_closed()
    assert time.monotonic() - t0 < 5


def test_sync_shutdown_wakes_makefile_reader_and_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = threading.Event()

    def handler(sock: asocket.sync.socket, addr: Any) -> None:
        with sock.makefile("rwb") as f:
            started.set()
            f.readline()  # blocks until the server shuts the connection down
            f.write(b"bye\n")
            f.flush()  # fails: the connection is shut down; not logged

    server = asocket.sync.serve_tcp(handler, "127.0.0.1", 0, grace_period=0.1)
    with (
        caplog.at_level(logging.WARNING, logger="asocket"),
        asocket.sync.create_connection(server.sockets[0].getsockname(), timeout=5) as client,
    ):
        assert started.wait(5)
        t0 = time.monotonic()
        server.close()
        server.wait_closed()
        assert time.monotonic() - t0 < 5
        assert server.active_connections == 0
        assert client.recv(10) == b""
    assert not caplog.records


def test_sync_close_clients_shuts_connections_and_ends_the_grace_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def handler(sock: asocket.sync.socket, addr: Any) -> None:
        while data := sock.recv(10):  # b"" once the server shuts the connection down
            sock.sendall(data)

    server = asocket.sync.serve_tcp(handler, "127.0.0.1", 0, grace_period=60)
    address = server.sockets[0].getsockname()
    with (
        caplog.at_level(logging.WARNING, logger="asocket"),
        asocket.sync.create_connection(address, timeout=5) as first,
    ):
        first.sendall(b"a")
        assert first.recv(10) == b"a"
        server.close_clients()
        assert first.recv(10) == b""
        with asocket.sync.create_connection(address, timeout=5) as other:  # still accepting
            other.sendall(b"b")
            assert other.recv(10) == b"b"
            server.close()
            closer = threading.Timer(0.2, server.close_clients)  # as a second Ctrl-C
            t0 = time.monotonic()
            closer.start()
            server.wait_closed()  # in the 60 s grace period until close_clients()
            assert 0.1 < time.monotonic() - t0 < 5
            assert other.recv(10) == b""
    assert server.active_connections == 0
    assert not caplog.records


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill")
def test_sync_interrupting_wait_closed_ends_the_grace_period_at_once() -> None:
    assert threading.current_thread() is threading.main_thread()  # SIGINT lands here
    started = threading.Event()
    ended = threading.Event()

    def handler(sock: asocket.sync.socket, addr: Any) -> None:
        started.set()
        try:
            sock.recv(10)  # until the server shuts the connection down
        finally:
            ended.set()

    server = asocket.sync.serve_tcp(handler, "127.0.0.1", 0, grace_period=60)
    interrupt = threading.Timer(0.2, signal.pthread_kill, (threading.get_ident(), signal.SIGINT))
    with asocket.sync.create_connection(server.sockets[0].getsockname(), timeout=5) as client:
        assert started.wait(5)
        server.close()
        t0 = time.monotonic()
        interrupt.start()  # a Ctrl-C 0.2 s into the 60 s grace period
        try:
            with pytest.raises(KeyboardInterrupt):
                server.wait_closed()
        finally:
            interrupt.cancel()
        assert time.monotonic() - t0 < 5
        assert ended.wait(5)
        assert client.recv(10) == b""  # the server closed it
    server.wait_closed()  # nothing left to wait for
    assert server.active_connections == 0


def test_sync_handler_ignoring_shutdown_does_not_hang(caplog: pytest.LogCaptureFixture) -> None:
    stop = threading.Event()
    started = threading.Event()

    def stubborn(sock: asocket.sync.socket, addr: Any) -> None:
        started.set()
        stop.wait(10)

    server = asocket.sync.serve_tcp(stubborn, "127.0.0.1", 0, grace_period=0.1)
    try:
        with (
            caplog.at_level(logging.WARNING, logger="asocket"),
            asocket.sync.create_connection(server.sockets[0].getsockname(), timeout=5),
        ):
            assert started.wait(5)
            t0 = time.monotonic()
            server.close()
            server.wait_closed()
            assert time.monotonic() - t0 < 5
    finally:
        stop.set()
    [record] = caplog.records
    assert "left running" in record.getMessage()


def test_sync_serve_forever_ends_on_close_from_a_handler() -> None:
    def handler(sock: asocket.sync.socket, addr: Any) -> None:
        server.close()
        server.wait_closed()  # from a handler: does not wait for itself

    server = asocket.sync.serve_tcp(handler, "127.0.0.1", 0)
    with asocket.sync.create_connection(server.sockets[0].getsockname(), timeout=5):
        done = threading.Thread(target=server.serve_forever)
        done.start()
        done.join(3)  # well within the 5 s grace: nobody waited for the closing handler
        assert not done.is_alive()


class _Stop(Exception):
    """Raised by the test's signal handler."""


@pytest.mark.parametrize("wait", ["serve_forever", "wait_closed"])
def test_sync_server_runs_a_signal_handler_that_interrupted_no_wait(wait: str) -> None:
    """A signal that interrupts no call of the main thread (the kernel handed it to
    another thread, or it landed just before the wait began) still has its Python
    handler run within a slice of the main thread's wait (as the stdlib's
    socketserver polls every 0.5 s), not when the server closes for some other reason."""

    def on_signal(signum: int, frame: Any) -> None:
        raise _Stop

    def handler(sock: asocket.sync.socket, addr: Any) -> None:
        pass

    old = signal.signal(signal.SIGUSR1, on_signal)
    server = asocket.sync.serve_tcp(handler, "127.0.0.1", 0)
    watchdog = threading.Timer(8, server.close)  # the bound: the wait ends here at the latest

    def kick() -> None:  # delivered to the kicker's own thread: it interrupts no wait of ours
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)

    kicker = threading.Timer(0.2, kick)
    t0 = time.monotonic()
    try:
        watchdog.start()
        kicker.start()
        with pytest.raises(_Stop):
            getattr(server, wait)()
        assert time.monotonic() - t0 < 4
    finally:
        watchdog.cancel()
        kicker.join(5)
        server.close()
        server.wait_closed()
        signal.signal(signal.SIGUSR1, old)
