"""The loop matrix and the strictness every test runs under.

Every ``@pytest.mark.asyncio`` test runs on three loops (pytest-asyncio's
``pytest_asyncio_loop_factories`` hook):

* ``asyncio``: the default selector loop, debug mode on;
* ``uvloop``: uvloop (where it installs);
* ``noreadiness``: a selector loop whose public ``add_reader``/``add_writer``/
  ``remove_*`` raise ``NotImplementedError``, as a proactor loop's do, so the
  library must fall back to the loop's ``sock_*`` coroutines.

An exception that reaches a loop's exception handler fails the test.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
import pytest_asyncio

try:
    import uvloop
except ImportError:  # pragma: no cover - Windows
    uvloop = None


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


_loop_errors: list[dict[str, Any]] = []


def _strict(loop: asyncio.AbstractEventLoop, debug: bool = True) -> asyncio.AbstractEventLoop:
    loop.set_debug(debug)
    loop.slow_callback_duration = 1.0  # debug mode's slow-callback log is noise on CI

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        _loop_errors.append(context)
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
    return loop


LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": lambda: _strict(asyncio.SelectorEventLoop()),
}
if uvloop is not None:
    LOOPS["uvloop"] = lambda: _strict(uvloop.new_event_loop(), debug=False)
LOOPS["noreadiness"] = lambda: _strict(NoReadinessLoop())


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
    if uvloop is not None and isinstance(loop, uvloop.Loop):
        return "uvloop"
    return "asyncio"


def pytest_report_header(config: pytest.Config) -> str:
    return f"asocket loop matrix: {', '.join(LOOPS)} (python {sys.version.split()[0]})"
