"""The sync face's waiter: block the calling thread in ``poll()`` until ready or the
deadline passes.

It never suspends, so an engine coroutine driven by the sync face's trampoline
finishes in one step. A thread blocked here is woken by ``close()`` from
another thread through ``shutdown()`` (see ``_gate``): the descriptor turns
readable and writable, and the retried call then finds the socket closed.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .._ops import READ, WRITE
from .._timeouts import timed_out
from .base import NoCheckpoints

T = TypeVar("T")

_clock = time.monotonic  # the sync face's clock: deadlines are on it
_HAS_POLL = hasattr(select, "poll")
_EVENTS = {READ: select.POLLIN | select.POLLPRI, WRITE: select.POLLOUT} if _HAS_POLL else {}


def _select(fds: Sequence[int], event: int, deadline: float | None) -> list[int]:
    """The ``select()`` fallback where there is no ``poll()``: the fds of ``fds`` ready for
    ``event`` (or in error), ``[]`` at ``deadline``."""
    timeout = None if deadline is None else max(0.0, deadline - _clock())
    r, w, x = select.select(*((fds, [], fds) if event == READ else ([], fds, fds)), timeout)
    return [fd for fd in fds if fd in r or fd in w or fd in x]


class PollWaiter(NoCheckpoints):
    """Waits by blocking the calling thread; stateless, one instance serves every socket."""

    clock = staticmethod(_clock)

    async def wait(self, fd: int, event: int, deadline: float | None) -> None:
        """Block until ``fd`` is ready for ``event`` or raise ``TimeoutError`` at ``deadline``."""
        if not _HAS_POLL:  # pragma: no cover - Windows
            if not _select([fd], event, deadline):
                raise timed_out()
            return
        poller = select.poll()
        poller.register(fd, _EVENTS[event])
        if deadline is None:
            poller.poll()  # EINTR is retried inside (PEP 475)
            return
        timeout = deadline - _clock()
        # poll() takes milliseconds and rounds a fraction up, never returning early.
        if timeout <= 0 or not poller.poll(timeout * 1000.0):
            raise timed_out()

    async def wait_any(self, fds: Sequence[int], event: int, deadline: float | None) -> list[int]:
        """Block until one of ``fds`` is ready for ``event``: those that are; ``[]`` at
        ``deadline``."""
        if not _HAS_POLL:  # pragma: no cover - Windows
            return _select(fds, event, deadline)
        poller = select.poll()
        mask = _EVENTS[event]
        for fd in fds:
            poller.register(fd, mask)
        if deadline is None:
            return [fd for fd, _ in poller.poll()]
        timeout = deadline - _clock()
        return [fd for fd, _ in poller.poll(timeout * 1000.0)] if timeout > 0 else []

    def wake(self, fd: int, event: int) -> None:
        """Nothing: a thread blocked in ``poll()`` is not woken, as the stdlib's timeout
        mode is not (the sync face's blocking mode blocks in the kernel)."""

    def forget(self, fd: int, close: Callable[[], None] | None) -> None:
        """Nothing is registered anywhere: ``close()`` at once."""
        if close is not None:
            close()

    async def to_thread(self, fn: Callable[..., T], *args: Any, deadline: float | None) -> T:
        """``fn(*args)`` in the calling thread (which may block: it is the sync face)."""
        return fn(*args)

    async def sleep(self, delay: float) -> None:
        """``time.sleep(delay)``."""
        time.sleep(delay)


WAITER = PollWaiter()
