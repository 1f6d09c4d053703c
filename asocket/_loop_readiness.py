"""The readiness waiter: loops with ``add_reader`` (asyncio's selector loop, uvloop).

One registration per fd and direction fans out to every task waiting on it:
``add_reader`` replaces an earlier callback, so it is never called twice for
one fd. Loop callbacks only wake futures; the syscall runs in the task after
the wait, so a cancelled wait consumes nothing.

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
import time
from asyncio.selector_events import BaseSelectorEventLoop
from collections.abc import Callable

from ._loop import LoopWaiter
from ._timeouts import timed_out
from ._waiter import READ, WRITE, NoTwins, ebadf


class _Fd:
    __slots__ = ("registered", "stale", "waiters")

    def __init__(self) -> None:
        self.waiters: list[list[asyncio.Future[None]]] = [[], []]
        self.registered = [False, False]
        self.stale = [False, False]  # the next event reports what a woken task consumes


def _expire(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(timed_out())


class ReadinessWaiter(NoTwins, LoopWaiter):
    """Waits with ``loop.add_reader``/``add_writer``; one instance per loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self._poll_first = isinstance(loop, BaseSelectorEventLoop)
        self._fds: dict[int, _Fd] = {}
        self._add = (loop.add_reader, loop.add_writer)
        self._remove = (loop.remove_reader, loop.remove_writer)

    async def wait(self, fd: int, event: int, deadline: float | None) -> None:
        """Return once ``fd`` is ready for ``event``; ``TimeoutError`` at ``deadline``."""
        loop = self.loop
        timer = None
        if deadline is not None:
            delay = deadline - time.monotonic()
            if delay <= 0:
                raise timed_out()
        entry = self._fds.get(fd)
        if entry is None:
            entry = self._fds[fd] = _Fd()
        if not entry.registered[event]:
            self._add[event](fd, self._ready, fd, event)
            entry.registered[event] = True
        fut: asyncio.Future[None] = loop.create_future()
        waiters = entry.waiters[event]
        waiters.append(fut)
        if deadline is not None:
            timer = loop.call_later(delay, _expire, fut)
        try:
            await fut
        finally:
            if timer is not None:
                timer.cancel()
            if not fut.done():  # cancelled: leave the list; the fd stays registered (lazy)
                fut.cancel()
            try:
                waiters.remove(fut)
            except ValueError:
                pass

    def _ready(self, fd: int, event: int) -> None:
        entry = self._fds.get(fd)
        if entry is None:  # pragma: no cover - forget() unregisters first
            return
        if entry.stale[event]:
            entry.stale[event] = False
            return
        waiters = entry.waiters[event]
        if not waiters:
            # Nobody waits any more: drop the registration (level-triggered, it would spin).
            self._remove[event](fd)
            entry.registered[event] = False
            if not entry.registered[READ] and not entry.registered[WRITE]:
                del self._fds[fd]
            return
        entry.waiters[event] = []
        entry.stale[event] = self._poll_first
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def forget(self, fd: int, close: Callable[[], None] | None) -> None:
        """Unregister ``fd``, wake its waiters with ``OSError(EBADF)``, then ``close()``."""
        entry = self._fds.pop(fd, None)
        if entry is not None:
            for event in (READ, WRITE):
                if entry.registered[event]:
                    try:
                        self._remove[event](fd)
                    except (RuntimeError, OSError, ValueError):  # e.g. the loop is closed
                        pass
                for fut in entry.waiters[event]:
                    if not fut.done():
                        fut.set_exception(ebadf())
        if close is not None:
            close()
