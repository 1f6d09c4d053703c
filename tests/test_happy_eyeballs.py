"""Happy Eyeballs (RFC 8305) in ``create_connection``.

The race is checked exactly with fakes: a scripted resolver and scripted
connects on a virtual clock, driven by the sync face's trampoline (nothing
waits for real, no unroutable address is ever dialled). Then on loopback, on
every backend (the loop matrix and trio) and on the sync face: ``localhost``
resolving to ``::1`` and ``127.0.0.1``, with ``::1`` refusing or black-holed (a
listener whose accept queue is full drops the SYN, as a broken IPv6 path does).
"""

from __future__ import annotations

import errno
import os
import select
import socket
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from _async_helpers import Tasks, bounded, cancelled

import asocket
import asocket.sync
from asocket import _connect
from asocket._sync import run
from asocket._timeouts import timed_out
from asocket._waiters.base import getaddrinfo

WAIT = 10.0
V6 = socket.AF_INET6
V4 = socket.AF_INET
NEVER = float("inf")


def info(family: int, host: str, port: int = 80) -> Any:
    sockaddr = (host, port, 0, 0) if family == V6 else (host, port)
    return (socket.AddressFamily(family), socket.SOCK_STREAM, 6, "", sockaddr)


# -- fakes ----------------------------------------------------------------------------


class Net:
    """The fake network: per address, what a connect gets and when; a virtual clock."""

    def __init__(self, infos: list[Any], script: dict[str, tuple[float, int]], **kw: Any) -> None:
        self.infos = infos
        self.script = script  # host -> (seconds after the connect starts, errno; 0: connected)
        self.now = 0.0
        self.resolve_time = kw.get("resolve_time", 0.0)
        self.fail_create = kw.get("fail_create", set())  # families whose socket() fails
        self.sockets: list[FakeSock] = []
        self.resolver_deadline: float | None = None
        self.interrupt_at: float | None = kw.get("interrupt_at")

    # the Waiter part
    def clock(self) -> float:
        return self.now

    async def to_thread(self, fn: Any, host: Any, port: Any, *args: Any, deadline: Any) -> Any:
        assert fn is getaddrinfo  # the only call the driver runs off the loop: the resolver
        self.resolver_deadline = deadline
        self.now += self.resolve_time
        return [(f, t, p, c, (a[0], port, *a[2:])) for f, t, p, c, a in self.infos]

    async def wait_any(self, fds: list[int], event: int, deadline: float | None) -> list[int]:
        racing = [s for s in self.sockets if s.fileno() in fds]
        assert len(racing) == len(fds), "waits on a socket that is not racing"
        first = min(s.done_at for s in racing)
        if self.interrupt_at is not None and min(first, deadline or NEVER) >= self.interrupt_at:
            self.now = self.interrupt_at
            raise KeyboardInterrupt
        if first == NEVER and deadline is None:
            raise AssertionError("the driver would wait forever")
        if deadline is not None and deadline < first:
            self.now = max(self.now, deadline)
            return []
        self.now = max(self.now, first)
        return [s.fileno() for s in racing if s.done_at <= self.now]

    # socket creation
    def new(self, family: int, type: int, proto: int) -> FakeSock:
        if family in self.fail_create:
            raise OSError(errno.EAFNOSUPPORT, os.strerror(errno.EAFNOSUPPORT))
        sock = FakeSock(self, family)
        self.sockets.append(sock)
        return sock

    def started(self) -> list[tuple[float, str]]:
        return [(s.started, s.address[0]) for s in self.sockets]

    def open(self) -> list[str]:
        return [s.address[0] for s in self.sockets if not s.closed]


class FakeSock:
    """What the driver uses of a socket, with a scripted connect."""

    def __init__(self, net: Net, family: int) -> None:
        self.net = net
        self.family = family
        self.fd = 100 + len(net.sockets)
        self.closed = False
        self.timeouts: list[float | None] = []
        self.bound: Any = None
        self.address: Any = None
        self.started = NEVER
        self.done_at = NEVER
        self.outcome = 0
        self.settled: Any = "not connected"
        self.until: float | None = None

    def settimeout(self, value: float | None) -> None:
        self.timeouts.append(value)

    async def _bind(self, address: Any) -> None:
        self.bound = address

    async def _connect(self, address: Any, ex: bool, until: float | None = None) -> int:
        self.address = address
        self.started = self.net.now
        after, self.outcome = self.net.script[address[0]]
        if not ex:  # the one address there is: a connect in the socket's own mode
            self.until = until
            if until is not None and self.net.now + after > until:
                self.net.now = max(self.net.now, until)
                raise timed_out()
            assert after != NEVER, "the connect would wait forever"
            self.net.now += after
            if self.outcome:
                raise OSError(self.outcome, os.strerror(self.outcome))
            return 0
        assert self.timeouts[-1] == 0.0  # a non-blocking connect_ex
        if after == 0.0:
            return self.outcome  # at once: connected (0) or failed
        self.done_at = self.net.now + after
        return errno.EINPROGRESS

    def fileno(self) -> int:
        return -1 if self.closed else self.fd

    def _connect_status(self) -> int | None:
        return self.outcome if self.net.now >= self.done_at else None

    def _connected(self, address: Any, timeout: float | None) -> None:
        self.settimeout(timeout)
        self.settled = address

    def close(self) -> None:
        self.closed = True


class FakeEngine:
    """The engine calls the driver makes, sent to the fake sockets' scripts."""

    CONNECTING = _connect.e.CONNECTING

    @staticmethod
    async def bind(waiter: Net, sock: FakeSock, address: Any) -> None:
        await sock._bind(address)

    @staticmethod
    async def connect(
        waiter: Net, sock: FakeSock, address: Any, ex: bool, until: float | None = None
    ) -> int:
        return await sock._connect(address, ex, until)

    @staticmethod
    def connect_status(sock: FakeSock) -> int | None:
        return sock._connect_status()

    @staticmethod
    def connected(sock: FakeSock, address: Any, timeout: float | None) -> None:
        sock._connected(address, timeout)

    @staticmethod
    def watch(waiter: Net, sock: FakeSock) -> int:
        assert waiter is sock.net
        return sock.fileno()


def connect(net: Net, timeout: Any = None, **kw: Any) -> Any:
    kw.setdefault("all_errors", False)
    kw.setdefault("source_address", None)
    if "happy_eyeballs_delay" in kw:
        kw["delay"] = kw.pop("happy_eyeballs_delay")
    with mock.patch.object(_connect, "e", FakeEngine):
        return run(
            _connect.create_connection(
                net.new, net, ("example.test", 443), timeout, kw.pop("source_address"), **kw
            )
        )


DUAL = [info(V6, "::a"), info(V6, "::b"), info(V4, "10.0.0.1"), info(V4, "10.0.0.2")]
REFUSED = errno.ECONNREFUSED


# -- the order ------------------------------------------------------------------------


def test_interleave_alternates_families_from_the_first_answer() -> None:
    assert [i[4][0] for i in _connect.interleave(DUAL)] == ["::a", "10.0.0.1", "::b", "10.0.0.2"]
    v4_first = [info(V4, "10.0.0.1"), info(V6, "::a"), info(V6, "::b"), info(V4, "10.0.0.2")]
    assert [i[4][0] for i in _connect.interleave(v4_first)] == [
        "10.0.0.1",
        "::a",
        "10.0.0.2",
        "::b",
    ]
    single = [info(V4, "10.0.0.1"), info(V4, "10.0.0.2")]
    assert _connect.interleave(single) == single
    assert _connect.interleave([]) == []


# -- the race -------------------------------------------------------------------------


def test_a_black_holed_family_costs_one_delay() -> None:
    net = Net(DUAL, {"::a": (NEVER, 0), "10.0.0.1": (0.01, 0)})
    sock = connect(net)
    assert sock.address == ("10.0.0.1", 443)
    assert net.started() == [(0.0, "::a"), (0.25, "10.0.0.1")]
    assert net.now == pytest.approx(0.26)
    assert net.open() == ["10.0.0.1"]  # the loser is closed
    assert sock.timeouts == [0.0, None] and sock.settled == ("10.0.0.1", 443)


def test_a_failure_starts_the_next_attempt_at_once() -> None:
    net = Net(DUAL, {"::a": (0.02, REFUSED), "10.0.0.1": (0.01, 0)})
    sock = connect(net)
    assert sock.address == ("10.0.0.1", 443)
    assert net.started() == [(0.0, "::a"), (0.02, "10.0.0.1")]
    assert net.now == pytest.approx(0.03)


def test_an_immediate_failure_starts_the_next_attempt_at_once() -> None:
    net = Net(DUAL, {"::a": (0.0, errno.ENETUNREACH), "10.0.0.1": (0.01, 0)})
    assert connect(net).address == ("10.0.0.1", 443)
    assert net.started() == [(0.0, "::a"), (0.0, "10.0.0.1")]


def test_the_first_to_connect_wins_even_if_it_started_first() -> None:
    net = Net(DUAL, {"::a": (0.4, 0), "10.0.0.1": (0.3, 0)})
    sock = connect(net)
    assert sock.address == ("::a", 443, 0, 0)
    assert net.now == pytest.approx(0.4)
    assert net.started() == [(0.0, "::a"), (0.25, "10.0.0.1")]
    assert net.open() == ["::a"]


def test_the_later_attempt_wins_when_it_connects_first() -> None:
    net = Net(DUAL, {"::a": (1.0, 0), "10.0.0.1": (0.1, 0)})
    assert connect(net).address == ("10.0.0.1", 443)
    assert net.open() == ["10.0.0.1"]


def test_two_ready_at_once_the_oldest_wins() -> None:
    net = Net(DUAL, {"::a": (0.5, 0), "10.0.0.1": (0.25, 0)})
    assert connect(net).address == ("::a", 443, 0, 0)
    assert net.open() == ["::a"]


def test_an_immediate_connect_wins_and_closes_the_others() -> None:
    net = Net(DUAL, {"::a": (NEVER, 0), "10.0.0.1": (0.0, 0)})
    assert connect(net).address == ("10.0.0.1", 443)
    assert net.open() == ["10.0.0.1"]


def test_the_delay_is_configurable() -> None:
    net = Net(DUAL, {"::a": (NEVER, 0), "10.0.0.1": (NEVER, 0), "::b": (0.05, 0)})
    assert connect(net, happy_eyeballs_delay=0.1).address == ("::b", 443, 0, 0)
    assert net.started() == [(0.0, "::a"), (0.1, "10.0.0.1"), (0.2, "::b")]
    assert net.open() == ["::b"]


def test_delay_none_tries_one_address_at_a_time_in_the_resolvers_order() -> None:
    net = Net(DUAL, {"::a": (1.0, errno.ETIMEDOUT), "::b": (2.0, REFUSED), "10.0.0.1": (0.1, 0)})
    assert connect(net, happy_eyeballs_delay=None).address == ("10.0.0.1", 443)
    assert net.started() == [(0.0, "::a"), (1.0, "::b"), (3.0, "10.0.0.1")]


def test_an_early_wake_up_keeps_waiting() -> None:
    net = Net([info(V4, "10.0.0.1"), info(V4, "10.0.0.2")], {"10.0.0.1": (0.2, 0)})

    real = net.wait_any

    async def early(fds: list[int], event: int, deadline: float | None) -> list[int]:
        if net.now == 0.0:
            net.now = 0.1
            return fds  # a false positive: still connecting
        return await real(fds, event, deadline)

    net.wait_any = early  # type: ignore[method-assign]
    assert connect(net).address == ("10.0.0.1", 443)
    assert net.now == pytest.approx(0.2)
    assert len(net.sockets) == 1


def test_socket_creation_failing_moves_on() -> None:
    net = Net(DUAL, {"10.0.0.1": (0.01, 0)}, fail_create={V6})
    assert connect(net).address == ("10.0.0.1", 443)
    with pytest.raises(ExceptionGroup) as group:
        connect(Net(DUAL, {}, fail_create={V6, V4}), all_errors=True)
    assert [e.errno for e in group.value.exceptions] == [errno.EAFNOSUPPORT] * 4


def test_source_address_is_bound_for_every_attempt() -> None:
    net = Net(DUAL, {"::a": (NEVER, 0), "10.0.0.1": (0.01, 0)})
    connect(net, source_address=("", 0))
    assert [s.bound for s in net.sockets] == [("", 0), ("", 0)]


def test_one_address_connects_in_its_final_mode_without_a_race() -> None:
    net = Net([info(V4, "10.0.0.1")], {"10.0.0.1": (0.5, 0)})
    sock = connect(net, timeout=2.0)
    assert sock.timeouts == [2.0] and sock.until == pytest.approx(2.0)
    assert net.now == pytest.approx(0.5)
    net = Net([info(V4, "10.0.0.1")], {"10.0.0.1": (5.0, 0)}, resolve_time=1.5)
    with pytest.raises(TimeoutError, match="timed out"):
        connect(net, timeout=2.0)  # the resolver took 1.5 of the 2 seconds
    assert net.now == pytest.approx(2.0) and net.open() == []
    net = Net([info(V4, "10.0.0.1")], {"10.0.0.1": (0.1, REFUSED)})
    with pytest.raises(ConnectionRefusedError):
        connect(net, source_address=("10.0.0.9", 0))
    assert net.sockets[0].bound == ("10.0.0.9", 0) and net.open() == []
    net = Net([info(V4, "10.0.0.1")], {"10.0.0.1": (0.1, REFUSED)})
    with pytest.raises(ExceptionGroup) as group:
        connect(net, all_errors=True)
    assert group.value.message == "create_connection failed"
    assert [type(e) for e in group.value.exceptions] == [ConnectionRefusedError]


# -- errors and the deadline ----------------------------------------------------------


def test_all_failing_raises_the_last_error_or_every_error() -> None:
    script = {
        "::a": (0.3, REFUSED),
        "10.0.0.1": (0.1, errno.EHOSTUNREACH),
        "::b": (0.0, errno.ENETUNREACH),
        "10.0.0.2": (0.2, REFUSED),
    }
    with pytest.raises(ConnectionRefusedError) as last:
        connect(Net(DUAL, script))
    assert str(last.value) == f"[Errno {REFUSED}] {os.strerror(REFUSED)}"
    net = Net(DUAL, script)
    with pytest.raises(ExceptionGroup) as group:
        connect(net, all_errors=True)
    assert group.value.message == "create_connection failed"
    # in the order they failed: ::a at 0.3, ::b at once when started (0.3), 10.0.0.1 at
    # 0.35, 10.0.0.2 at 0.5 (started at 0.3, when ::b failed)
    assert [e.errno for e in group.value.exceptions] == [
        REFUSED,
        errno.ENETUNREACH,
        errno.EHOSTUNREACH,
        REFUSED,
    ]
    assert net.started() == [(0.0, "::a"), (0.25, "10.0.0.1"), (0.3, "::b"), (0.3, "10.0.0.2")]
    assert net.open() == []


def test_timeout_bounds_the_whole_call() -> None:
    never = {h: (NEVER, 0) for h in ("::a", "::b", "10.0.0.1", "10.0.0.2")}
    net = Net(DUAL, never)
    with pytest.raises(TimeoutError) as exc:
        connect(net, timeout=0.6)
    assert str(exc.value) == "timed out" and exc.value.errno is None
    assert net.now == pytest.approx(0.6)
    assert net.started() == [(0.0, "::a"), (0.25, "10.0.0.1"), (0.5, "::b")]  # 4th never
    assert net.open() == []
    net = Net(DUAL, never)
    with pytest.raises(ExceptionGroup) as group:
        connect(net, timeout=0.6, all_errors=True)
    assert [type(e) for e in group.value.exceptions] == [TimeoutError] * 3


def test_the_timeout_counts_resolution_and_is_set_on_the_socket() -> None:
    net = Net(DUAL, {"::a": (NEVER, 0), "10.0.0.1": (0.05, 0)}, resolve_time=0.5)
    with pytest.raises(TimeoutError):
        connect(net, timeout=0.6)
    assert net.resolver_deadline == pytest.approx(0.6)
    assert net.started() == [(0.5, "::a")]
    net = Net(DUAL, {"::a": (NEVER, 0), "10.0.0.1": (0.05, 0)})
    sock = connect(net, timeout=2.0)
    assert sock.timeouts == [0.0, 2.0]


def test_the_default_timeout_applies_when_none_is_given() -> None:
    net = Net(DUAL, {h: (NEVER, 0) for h in ("::a", "::b", "10.0.0.1", "10.0.0.2")})
    asocket.setdefaulttimeout(0.3)
    try:
        with pytest.raises(TimeoutError):
            connect(net, timeout=socket._GLOBAL_DEFAULT_TIMEOUT)  # type: ignore[attr-defined]
    finally:
        asocket.setdefaulttimeout(None)
    assert net.now == pytest.approx(0.3)


def test_timeout_zero_fails_each_attempt_as_the_stdlib() -> None:
    net = Net(DUAL, {h: (0.01, 0) for h in ("::a", "::b", "10.0.0.1", "10.0.0.2")})
    with pytest.raises(BlockingIOError) as exc:
        connect(net, timeout=0.0)
    assert exc.value.errno == errno.EINPROGRESS
    assert len(net.sockets) == 4 and net.open() == []


def test_an_interrupt_closes_every_attempt() -> None:
    net = Net(DUAL, {h: (NEVER, 0) for h in ("::a", "::b", "10.0.0.1")}, interrupt_at=0.3)
    with pytest.raises(KeyboardInterrupt):
        connect(net)
    assert len(net.sockets) == 2 and net.open() == []


def test_bad_arguments() -> None:
    net = Net(DUAL, {})
    with pytest.raises(ValueError, match="happy_eyeballs_delay"):
        connect(net, happy_eyeballs_delay=-1)
    with pytest.raises(ValueError, match="happy_eyeballs_delay"):
        connect(net, happy_eyeballs_delay=float("nan"))
    with pytest.raises(TypeError):
        connect(net, happy_eyeballs_delay="0.1")
    with pytest.raises(ValueError, match="Timeout value out of range"):
        connect(net, timeout=-1)
    empty = Net([], {})
    with pytest.raises(OSError, match="getaddrinfo returns an empty list"):
        connect(empty)
    assert net.sockets == []


def test_timed_out_is_the_stdlib_message() -> None:
    assert str(timed_out()) == "timed out"


# -- real loopback: localhost is ::1 and 127.0.0.1 -----------------------------------


@pytest.fixture
def dual_stack_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    """``localhost`` resolves to ``::1`` then ``127.0.0.1``, as with "::1 localhost" in
    /etc/hosts (the tests' resolver guard answers it from the two literals)."""
    guard = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, family: int = 0, *args: Any) -> Any:
        if host in ("localhost", b"localhost") and family == socket.AF_UNSPEC:
            return guard("::1", port, V6, *args) + guard("127.0.0.1", port, V4, *args)
        return guard(host, port, family, *args)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


class Loopback:
    """127.0.0.1:port listening; ::1 on the same port refusing or black-holed."""

    def __init__(self, v6: str) -> None:
        self.held: list[socket.socket] = []
        # The kernel picks a free port for 127.0.0.1 only: the same port on ::1 may be
        # taken (a connection in TIME_WAIT, another test's socket), so pick again.
        for _ in range(100):
            self.v4 = socket.create_server(("127.0.0.1", 0))
            self.port = self.v4.getsockname()[1]
            six = socket.socket(V6)
            try:
                six.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                six.bind(("::1", self.port))  # refusing: bound, not listening
                break
            except OSError as exc:
                six.close()
                self.v4.close()
                if exc.errno != errno.EADDRINUSE:
                    raise
        else:  # pragma: no cover - a machine with no pair of free ports
            pytest.fail("no port free on both 127.0.0.1 and ::1")
        self.held.append(six)
        if v6 == "black hole":  # listening with a full accept queue: SYNs are dropped
            six.listen(0)
            for _ in range(8):
                filler = socket.socket(V6)
                filler.setblocking(False)
                filler.connect_ex(("::1", self.port))
                self.held.append(filler)
                if not select.select([], [filler], [], 0.2)[1]:
                    break  # this one hangs: the queue is full
            else:  # pragma: no cover - a stack that never drops SYNs
                self.close()
                pytest.skip("this TCP stack never fills a listen queue")

    def close(self) -> None:
        self.v4.close()
        for sock in self.held:
            sock.close()


@pytest.fixture(params=["refusing", "black hole"])
def loopback(request: pytest.FixtureRequest, dual_stack_localhost: None) -> Iterator[Loopback]:
    net = Loopback(request.param)
    yield net
    net.close()


def test_localhost_resolves_to_both_families(dual_stack_localhost: None) -> None:
    families = [i[0] for i in socket.getaddrinfo("localhost", 80, 0, socket.SOCK_STREAM)]
    assert families == [V6, V4]


# With a delay of 0.1 s a black-holed ::1 costs 0.1 s; with ::1 refusing, a delay of
# 60 s would still connect at once (the failure starts the next attempt).
def delay_for(net: Loopback) -> float:
    return 60.0 if net.held[0].getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 0 else 0.1


@pytest.mark.anyio
async def test_async_localhost_falls_back_to_ipv4(loopback: Loopback) -> None:
    sock = await bounded(
        asocket.create_connection(
            ("localhost", loopback.port), timeout=WAIT, happy_eyeballs_delay=delay_for(loopback)
        ),
        WAIT,
    )
    with sock:
        assert sock.family == V4 and sock.getpeername() == ("127.0.0.1", loopback.port)
        assert sock.gettimeout() == WAIT
        conn, _ = loopback.v4.accept()
        with conn:
            conn.sendall(b"over IPv4")
            assert await bounded(sock.recv(100), WAIT) == b"over IPv4"


def test_sync_localhost_falls_back_to_ipv4(loopback: Loopback) -> None:
    with asocket.sync.create_connection(
        ("localhost", loopback.port), happy_eyeballs_delay=delay_for(loopback)
    ) as sock:
        assert sock.family == V4 and sock.getpeername() == ("127.0.0.1", loopback.port)
        assert sock.gettimeout() is None and sock.getblocking()
        with pytest.raises(OSError) as again:  # as after the stdlib's blocking connect
            sock.connect(("127.0.0.1", loopback.port))
        assert again.value.errno == errno.EISCONN


@pytest.mark.anyio
async def test_async_one_at_a_time_waits_out_the_black_hole(dual_stack_localhost: None) -> None:
    net = Loopback("black hole")
    try:
        with pytest.raises(TimeoutError, match="timed out"):
            await bounded(
                asocket.create_connection(
                    ("localhost", net.port), timeout=0.3, happy_eyeballs_delay=None
                ),
                WAIT,
            )
    finally:
        net.close()


def test_sync_timeout_bounds_the_black_hole(dual_stack_localhost: None) -> None:
    net = Loopback("black hole")
    try:
        with pytest.raises(ExceptionGroup) as group:
            asocket.sync.create_connection(
                ("localhost", net.port), timeout=0.3, happy_eyeballs_delay=None, all_errors=True
            )
        assert [type(e) for e in group.value.exceptions] == [TimeoutError]
    finally:
        net.close()


@pytest.mark.anyio
async def test_async_ipv6_wins_when_it_answers(dual_stack_localhost: None) -> None:
    with socket.create_server(("::1", 0), family=V6) as six:
        port = six.getsockname()[1]
        sock = await bounded(asocket.create_connection(("localhost", port)), WAIT)
        with sock:
            assert sock.family == V6 and sock.getpeername()[:2] == ("::1", port)


@pytest.mark.anyio
async def test_async_cancel_mid_race_closes_the_attempts(dual_stack_localhost: None) -> None:
    net = Loopback("black hole")
    try:
        before = len(os.listdir("/proc/self/fd"))
        async with Tasks() as tasks:
            task = await tasks.start(
                asocket.create_connection(("::1", net.port), happy_eyeballs_delay=None), 0.05
            )
            await cancelled(task)
        assert len(os.listdir("/proc/self/fd")) == before
    finally:
        net.close()
