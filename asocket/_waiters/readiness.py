"""The readiness waiter: the loops with ``add_reader`` the edge waiter (``epoll``) does
not serve: uvloop, and asyncio's selector loop where there is no epoll (macOS, the
BSDs) or when it was first used with no descriptor left for one.

One registration per fd and direction (``add_reader`` replaces an earlier
callback, so it is never called twice for one fd) fans out to every task
waiting on it (``loop.LoopWaiter``).

Registrations are dropped lazily: a reader stays registered after its waiter
is served, and is removed the first time it fires with nobody waiting. In a
request/response exchange the next wait then finds it still registered, which
saves the two ``epoll_ctl`` calls per wait that ``loop.sock_recv`` makes.

asyncio's selector loop polls before it runs the callbacks queued in the
previous iteration, so the first event after a wake-up reports the data the
woken task is about to consume: it is stale, and is ignored (the registration
is level-triggered: a real event is reported again on the next iteration).
uvloop runs I/O callbacks after the queued ones: its events are never stale.
"""

from __future__ import annotations

import asyncio
from asyncio.selector_events import BaseSelectorEventLoop
from collections.abc import Callable

from .._ops import READ, WRITE
from .loop import Fd, LoopWaiter


class ReadinessWaiter(LoopWaiter):
    """Waits with ``loop.add_reader``/``add_writer``; one instance per loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self._poll_first = isinstance(loop, BaseSelectorEventLoop)
        self._add = (loop.add_reader, loop.add_writer)
        self._remove = (loop.remove_reader, loop.remove_writer)

    def _arm(self, fd: int, event: int) -> None:
        self._add[event](fd, self._ready_stale if self._poll_first else self._ready, fd, event)

    def _ready(self, fd: int, event: int) -> None:
        """A report of a loop whose reports are never stale (uvloop)."""
        entry = self._fds.get(fd)
        if entry is None:  # pragma: no cover - forget() unregisters first
            return
        if not self._wake(entry, event):
            self._drop(fd, entry, event)

    def _ready_stale(self, fd: int, event: int) -> None:
        """A report of asyncio's selector loop: the first after a wake-up is stale."""
        entry = self._fds.get(fd)
        if entry is None:  # pragma: no cover - forget() unregisters first
            return
        if entry.stale[event]:
            entry.stale[event] = False
        elif self._wake(entry, event):
            entry.stale[event] = True
        else:
            self._drop(fd, entry, event)

    def _drop(self, fd: int, entry: Fd, event: int) -> None:
        """Nobody waits any more: drop the registration (level-triggered, it would spin)."""
        self._remove[event](fd)
        entry.armed[event] = False
        if not entry.armed[READ] and not entry.armed[WRITE]:
            del self._fds[fd]

    def _disarm(self, fd: int, entry: Fd | None, close: Callable[[], None] | None) -> None:
        for event in (READ, WRITE):
            if entry is not None and entry.armed[event]:
                try:
                    self._remove[event](fd)
                except (RuntimeError, OSError, ValueError):  # e.g. the loop is closed
                    pass
        if close is not None:
            close()
