"""The backends every async test runs on, and the strictness every test runs under.

The loop matrix, four asyncio loops:

* ``asyncio``: the default selector loop, debug mode on for ``@pytest.mark.anyio``
  tests (pytest-asyncio's runner sets the debug mode from its own ``asyncio_debug``
  option, off, for ``@pytest.mark.asyncio`` tests; test_reliability.py turns it off
  for its storms, which debug mode slows several times over);
* ``uvloop``: uvloop (where it installs);
* ``noreadiness``: a selector loop whose public ``add_reader``/``add_writer``/
  ``remove_*`` raise ``NotImplementedError``, as a proactor loop's do, so the
  library must fall back to the loop's ``sock_*`` coroutines;
* ``readiness``: the default selector loop served by the readiness waiter
  (``_waiters/readiness.py``), as it is where there is no epoll (macOS, the BSDs);
  on Linux the selector loop gets the edge waiter (``_waiters/epoll.py``), and
  uvloop the readiness waiter.

Two kinds of async test:

* ``@pytest.mark.anyio``: one body on every backend, the loops above and
  ``trio``, through anyio's pytest plugin (the ``anyio_backend`` fixture below;
  the test id ends in ``[asyncio]``, ``[uvloop]``, ``[noreadiness]``, ``[readiness]``
  or ``[trio]``, and the ``backend`` fixture gives that name). Every test of asocket's
  semantics is one of these: modes and deadlines, several waiters, close,
  cancellation, half-close and resets, Happy Eyeballs, servers, TLS, buffered files.
  Its body uses anyio's primitives (task groups, cancel scopes, ``anyio.fail_after``,
  ``anyio.Event``, ``anyio.sleep``) and the helpers of ``_async_helpers.py``
  (``bounded``, ``Tasks``), which are the same code on asyncio and on trio. Bodies
  run on real clocks; trio's ``MockClock`` is for the trio-only tests of test_trio.py.
* ``@pytest.mark.asyncio``: the loop matrix only, through pytest-asyncio's
  ``pytest_asyncio_loop_factories`` hook: for what is about asyncio itself (loops
  made in threads or one after another, ``asyncio.Runner``, asyncio's streams as a
  peer, the loop's internals), and the files not yet converted.

Why anyio's plugin rather than a fixture of our own: it already runs one body on
asyncio (on any loop: ``loop_factory`` takes ours, so the matrix keeps its
loops) and on trio, with async fixtures, and anyio is a test dependency anyway; a
fixture of our own would have had to write a trio runner and a second set of task
and timeout primitives, and the bodies would no longer be plain anyio code.

An exception that reaches a loop's exception handler fails the test.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import pytest_asyncio

import asocket._waiters.current
import asocket._waiters.thread
from asocket._resolve import is_numeric_host
from asocket._waiters.readiness import ReadinessWaiter

try:
    import uvloop
except ImportError:  # pragma: no cover - Windows
    uvloop = None


class ReadinessLoop(asyncio.SelectorEventLoop):
    """The default selector loop, served by the readiness waiter (see ``LOOPS``)."""


class NoReadinessLoop(asyncio.SelectorEventLoop):
    """A loop without the readiness API, like ``ProactorEventLoop``."""

    def add_reader(self, *args: Any) -> Any:
        raise NotImplementedError

    add_writer = remove_reader = remove_writer = add_reader

    # asyncio's own sock_* helpers call the public remove_* on completion;
    # send those to the private twins so only callers from outside are refused.
    def _sock_read_done(self, fd: int, fut: Any, handle: Any = None) -> None:
        if handle is None or not handle.cancelled():
            self._remove_reader(fd)

    def _sock_write_done(self, fd: int, fut: Any, handle: Any = None) -> None:
        if handle is None or not handle.cancelled():
            self._remove_writer(fd)


# -- loopback-only name resolution ---------------------------------------------------
# Tests may resolve only literals and "localhost". /etc/hosts may lack "::1 localhost"
# and nsswitch may fall through to DNS, so an AF_INET6 lookup of localhost, a
# reverse lookup or any other name would leave the machine: refuse them instead.
# asocket calls socket.getaddrinfo & co at call time, so the guard covers it too.

_real = {
    name: getattr(socket, name)
    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo")
}


def _refuse(host: Any) -> socket.gaierror:
    return socket.gaierror(
        socket.EAI_NONAME, f"Name or service not known (tests resolve loopback only: {host!r})"
    )


def _loopback_getaddrinfo(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> Any:
    name = host.decode("ascii", "replace") if isinstance(host, bytes | bytearray) else host
    if name is None or is_numeric_host(name) or flags & socket.AI_NUMERICHOST:
        pass  # answered without any lookup
    elif name == "localhost":
        if family == socket.AF_INET6:  # /etc/hosts may not say ::1: never ask DNS
            host = "::1"
    else:
        raise _refuse(host)
    return _real["getaddrinfo"](host, port, family, type, proto, flags)


def _loopback_gethostbyname(host: Any) -> Any:
    if host == "localhost" or is_numeric_host(host):
        return _real["gethostbyname"]("127.0.0.1" if host == "localhost" else host)
    raise _refuse(host)


def _loopback_gethostbyname_ex(host: Any) -> Any:
    if host == "localhost" or (is_numeric_host(host) and str(host).startswith("127.")):
        return _real["gethostbyname_ex"](host)
    raise _refuse(host)


def _loopback_gethostbyaddr(host: Any) -> Any:
    if host == "localhost" or str(host).startswith("127."):
        return _real["gethostbyaddr"](host)
    raise _refuse(host)


def _loopback_getnameinfo(sockaddr: Any, flags: int) -> Any:
    if str(sockaddr[0]).startswith("127.") or flags & socket.NI_NUMERICHOST:
        return _real["getnameinfo"](sockaddr, flags)
    raise _refuse(sockaddr[0])


for _name, _guard in [
    ("getaddrinfo", _loopback_getaddrinfo),
    ("gethostbyname", _loopback_gethostbyname),
    ("gethostbyname_ex", _loopback_gethostbyname_ex),
    ("gethostbyaddr", _loopback_gethostbyaddr),
    ("getnameinfo", _loopback_getnameinfo),
]:
    _guard.__name__ = _guard.__qualname__ = _name
    setattr(socket, _name, _guard)

_loop_errors: list[dict[str, Any]] = []


def _strict(loop: asyncio.AbstractEventLoop, debug: bool = True) -> asyncio.AbstractEventLoop:
    loop.set_debug(debug)
    loop.slow_callback_duration = 1.0  # debug mode's slow-callback log is noise on CI

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        _loop_errors.append(context)
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    # The loop's waiter now: the edge waiter holds a descriptor (its epoll) for the
    # loop's life, which tests counting descriptors before and after must not see appear.
    asocket._waiters.current.waiter_for(loop)
    return loop


LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": lambda: _strict(asyncio.SelectorEventLoop()),
}
if uvloop is not None:
    LOOPS["uvloop"] = lambda: _strict(uvloop.new_event_loop(), debug=False)
LOOPS["noreadiness"] = lambda: _strict(NoReadinessLoop())


def _readiness_loop() -> asyncio.AbstractEventLoop:
    loop = ReadinessLoop()
    asocket._waiters.current._waiters[loop] = ReadinessWaiter(loop)  # (not the edge waiter)
    return _strict(loop)


if asocket._waiters.current._edge_waiter is not None:
    LOOPS["readiness"] = _readiness_loop

# Loops without add_reader wait through asocket's one helper thread, which holds three
# descriptors for the life of the process: start it now, so that tests counting
# descriptors before and after never see it appear.
asocket._waiters.thread.helper()


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    return LOOPS


@pytest.fixture(autouse=True)
def _no_loop_errors() -> Iterator[None]:
    _loop_errors.clear()
    yield
    errors = list(_loop_errors)
    _loop_errors.clear()
    assert not errors, f"exceptions reached the event loop's handler: {errors}"


@pytest_asyncio.fixture
async def loop_kind() -> str:
    """The loop kind the current async test runs on."""
    loop = asyncio.get_running_loop()
    if isinstance(loop, NoReadinessLoop):
        return "noreadiness"
    if isinstance(loop, ReadinessLoop):
        return "readiness"
    if uvloop is not None and isinstance(loop, uvloop.Loop):
        return "uvloop"
    return "asyncio"


def pytest_report_header(config: pytest.Config) -> str:
    return f"asocket loop matrix: {', '.join(LOOPS)} (python {sys.version.split()[0]})"


# -- anyio's pytest plugin: the loop matrix plus trio ----------------------------------
# Tests marked ``@pytest.mark.anyio`` run one body on every backend: the asyncio
# loops above (through anyio's ``loop_factory``) and trio (see the module docstring).

ANYIO_BACKENDS: dict[str, tuple[str, dict[str, Any]]] = {
    name: ("asyncio", {"loop_factory": factory}) for name, factory in LOOPS.items()
}
try:
    import trio  # noqa: F401
except ImportError:  # pragma: no cover - trio is optional
    pass
else:
    ANYIO_BACKENDS["trio"] = ("trio", {})


@pytest.fixture(params=list(ANYIO_BACKENDS))
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """The backend an ``@pytest.mark.anyio`` test runs on (each in turn)."""
    return ANYIO_BACKENDS[request.param]


@pytest.fixture
def backend(request: pytest.FixtureRequest, anyio_backend: Any) -> str:
    """The name of the backend an ``@pytest.mark.anyio`` test runs on: ``asyncio``,
    ``uvloop``, ``noreadiness``, ``readiness`` or ``trio`` (the test's id says the same)."""
    name: str = request.node.callspec.params["anyio_backend"]
    return name
