"""The differential harness: one scenario, run on the stdlib, ``asocket.sync`` and ``asocket``.

A scenario is an ``async def scenario(F)`` written once against a :class:`Face`:
``F.mod`` is the module under test (``socket``, ``asocket.sync`` or ``asocket``)
and every call that is a coroutine on the async face goes through
``await F.call(fn, *args)`` (the result) or ``await F.outcome(fn, *args)`` (a
comparable :class:`Returned` or :class:`Raised`). On the stdlib and the sync
face those calls return at once, so the scenario never suspends and
:func:`run_blocking` drives it in one step, with no event loop involved; on the
async face it is awaited on the test's loop, every awaited call bounded.

The scenario returns a value made of plain data (outcomes, bools, bytes,
normalized addresses); :func:`check` asserts that the three faces return the
same value.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import asocket
import asocket.sync

# Each awaited call on the async face is bounded by this many seconds: a call that
# should have returned or raised at once, but waits instead, shows up as ``Hung``.
BOUND = 5.0

# The async face's coroutine methods and module functions (docs/api.md); the stdlib and the
# sync face return these at once. A call that breaks this is a contract failure.
AWAITABLE = frozenset(
    {
        "accept",
        "bind",
        "connect",
        "connect_ex",
        "recv",
        "recv_into",
        "recvfrom",
        "recvfrom_into",
        "recvmsg",
        "recvmsg_into",
        "send",
        "sendall",
        "sendto",
        "sendmsg",
        "sendfile",
        "create_connection",
        "create_server",
        "getaddrinfo",
        "getnameinfo",
        "gethostbyname",
        "gethostbyname_ex",
        "gethostbyaddr",
        "send_fds",
        "recv_fds",
    }
)
PLAIN = frozenset(
    {
        "listen",
        "close",
        "detach",
        "dup",
        "fileno",
        "shutdown",
        "getsockname",
        "getpeername",
        "getsockopt",
        "setsockopt",
        "settimeout",
        "gettimeout",
        "setblocking",
        "getblocking",
        "get_inheritable",
        "set_inheritable",
        "socketpair",
        "fromfd",
        "getdefaulttimeout",
        "setdefaulttimeout",
    }
)


class Hung(Exception):
    """An awaited call on the async face did not finish within its bound."""


@dataclass(frozen=True)
class Returned:
    value: Any


@dataclass(frozen=True)
class Raised:
    type: type[BaseException]
    errno: int | None
    message: str
    group: tuple[Raised, ...] = field(default=())


Outcome = Returned | Raised


def raised(exc: BaseException) -> Raised:
    """The comparable form of an exception: type, errno, ``str(exc)`` (and a group's members)."""
    group: tuple[Raised, ...] = ()
    if isinstance(exc, BaseExceptionGroup):
        group = tuple(raised(e) for e in exc.exceptions)
    return Raised(type(exc), getattr(exc, "errno", None), str(exc), group)


def timed_out() -> Raised:
    return Raised(TimeoutError, None, "timed out")


@dataclass
class Face:
    """How a scenario reaches one face: its module, and how to call its I/O methods."""

    name: str  # "stdlib" | "sync" | "async"
    mod: ModuleType
    loop_kind: str | None = None  # the async face's loop: asyncio, uvloop, noreadiness
    bound: float = BOUND

    @property
    def is_async(self) -> bool:
        return self.name == "async"

    @property
    def label(self) -> str:
        return f"async[{self.loop_kind}]" if self.is_async else self.name

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``, awaited on the async face; its result, or its exception."""
        result = fn(*args, **kwargs)
        name = getattr(fn, "__name__", "")
        awaitable = inspect.isawaitable(result)
        if name in AWAITABLE or name in PLAIN:
            expected = self.is_async and name in AWAITABLE
            if awaitable != expected:
                if awaitable:
                    result.close()
                raise AssertionError(
                    f"{self.label}: {name}() {'returned' if awaitable else 'did not return'}"
                    " an awaitable"
                )
        if not awaitable:
            return result
        assert self.is_async, f"{self.label}: {name}() returned an awaitable"
        scope = asyncio.timeout(self.bound)
        try:
            async with scope:
                return await result
        except TimeoutError:
            if scope.expired():
                raise Hung(f"{name}() still waiting after {self.bound} s") from None
            raise

    async def outcome(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Outcome:
        """What ``call`` returns or raises, as a comparable value."""
        try:
            value = await self.call(fn, *args, **kwargs)
        except AssertionError:
            raise
        except Exception as exc:
            return raised(exc)
        return Returned(normalize(value))

    async def timed(
        self, timeout: float, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Outcome:
        """``outcome``, asserting it took about ``timeout`` (at least 0.8 of it, under 3 s)."""
        start = time.monotonic()
        result = await self.outcome(fn, *args, **kwargs)
        elapsed = time.monotonic() - start
        assert 0.8 * timeout <= elapsed < 3.0, f"{self.label}: {fn.__name__} took {elapsed:.3f} s"
        return result

    async def quick(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Outcome:
        """``outcome``, asserting it did not wait (under 0.5 s)."""
        start = time.monotonic()
        result = await self.outcome(fn, *args, **kwargs)
        elapsed = time.monotonic() - start
        assert elapsed < 0.5, f"{self.label}: {getattr(fn, '__name__', fn)} waited {elapsed:.3f} s"
        return result

    @contextlib.contextmanager
    def bounded(self, seconds: float) -> Iterator[None]:
        """Lower the async face's bound for calls expected to hang on a known deviation."""
        old, self.bound = self.bound, seconds
        try:
            yield
        finally:
            self.bound = old


SOCKET_TYPES = (socket.socket, asocket.sync.socket, asocket.socket)


def normalize(value: Any) -> Any:
    """A comparable form of a return value: a socket becomes a description (and is closed)."""
    if isinstance(value, SOCKET_TYPES):
        with value:
            return ("socket", value.family, value.type, value.proto, value.gettimeout())
    if isinstance(value, tuple):
        return tuple(normalize(v) for v in value)
    return value


STDLIB = Face("stdlib", socket)
SYNC = Face("sync", asocket.sync)


def run_blocking(scenario: Callable[[Face], Awaitable[Any]], face: Face) -> Any:
    """Run ``scenario`` on a blocking face (stdlib or sync) in one step, no event loop."""
    coro = scenario(face)
    assert inspect.iscoroutine(coro)
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise AssertionError(f"{face.label}: the scenario suspended; a blocking face never yields")


async def run_all(
    scenario: Callable[[Face], Awaitable[Any]], loop_kind: str
) -> tuple[Any, dict[str, Any]]:
    """The stdlib's result, and each asocket face's: ``(expected, {face: result})``."""
    expected = run_blocking(scenario, STDLIB)
    got = {"sync": run_blocking(scenario, SYNC)}
    async with asyncio.timeout(60):
        got[f"async[{loop_kind}]"] = await scenario(Face("async", asocket, loop_kind))
    return expected, got


async def check(scenario: Callable[[Face], Awaitable[Any]], loop_kind: str) -> Any:
    """Assert that the sync face and the async face (on this loop) match the stdlib.

    Returns the stdlib's result, for scenarios that also assert something about it.
    """
    expected, got = await run_all(scenario, loop_kind)
    report = [differences(face, expected, value) for face, value in got.items()]
    assert not any(report), "\n".join(r for r in report if r)
    return expected


def check_sync(scenario: Callable[[Face], Awaitable[Any]]) -> Any:
    """Assert that the sync face matches the stdlib (no event loop at all)."""
    expected = run_blocking(scenario, STDLIB)
    report = differences("sync", expected, run_blocking(scenario, SYNC))
    assert not report, report
    return expected


def differences(face: str, expected: Any, got: Any) -> str:
    """Where ``got`` differs from the stdlib's ``expected``, one line per entry ('' if none)."""
    if expected == got:
        return ""
    lines = [f"{face} differs from the stdlib:"]
    if isinstance(expected, dict) and isinstance(got, dict):
        for key in {**expected, **got}:
            if expected.get(key, "<missing>") != got.get(key, "<missing>"):
                lines.append(f"  [{key!r}]")
                lines.append(f"    stdlib:  {expected.get(key, '<missing>')!r}")
                lines.append(f"    {face}: {got.get(key, '<missing>')!r}")
    elif isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got):
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            if e != g:
                lines.append(f"  [{i}]")
                lines.append(f"    stdlib:  {e!r}")
                lines.append(f"    {face}: {g!r}")
    else:
        lines.append(f"    stdlib:  {expected!r}")
        lines.append(f"    {face}: {got!r}")
    return "\n".join(lines)


# -- helpers for scenarios ------------------------------------------------------


@contextlib.contextmanager
def later(delay: float, fn: Callable[..., Any], *args: Any) -> Iterator[None]:
    """Call ``fn(*args)`` on a thread after ``delay`` seconds (a peer acting meanwhile)."""
    timer = threading.Timer(delay, fn, args)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join(5)


@contextlib.contextmanager
def closed_port() -> Iterator[tuple[str, int]]:
    """A loopback TCP address where nothing listens (held bound, so no one else takes it)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()


def ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


_FD = re.compile(r"fd=-?\d+")
_PORT = re.compile(r"(\('[^']*', )\d+")


def repr_shape(sock: Any) -> str:
    """``repr(sock)`` without what varies: the class's module, fd numbers and ports."""
    text = repr(sock)
    prefix = f"<{type(sock).__module__}.{type(sock).__qualname__}"
    assert text.startswith(prefix), text
    text = "<socket" + text[len(prefix) :]
    return _PORT.sub(r"\1PORT", _FD.sub("fd=N", text))


def blocked_send_after_shutdown(
    mod: ModuleType, timeout: float | None, peer: bool = False
) -> type[BaseException]:
    """What ``sendall`` on a socket of ``mod`` (``socket`` or ``asocket.sync``), blocked
    in a thread on a full ``AF_UNIX`` socket in the mode ``timeout``, raises once this
    thread shuts the socket down for writing (``peer``: shuts the peer down for
    reading): in blocking mode the kernel wakes the blocked ``send`` (``EPIPE``); in
    timeout mode ``poll()`` does not report the shutdown, and the deadline passes.
    The reference of both faces' tests."""
    a, b = mod.socketpair()
    with a, b:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        a.settimeout(timeout)
        raised: list[BaseException] = []

        def send() -> None:
            try:
                a.sendall(b"x" * 4_000_000)
            except OSError as exc:
                raised.append(exc)

        thread = threading.Thread(target=send)
        thread.start()
        thread.join(0.1)  # (blocked by now)
        if peer:
            b.shutdown(socket.SHUT_RD)
        else:
            a.shutdown(socket.SHUT_WR)
        thread.join(10.0)
        assert not thread.is_alive(), f"{mod.__name__}'s send stayed blocked"
    return type(raised[0])
