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

A loop may also let go of a registration by itself: uvloop (libuv's poll
handle), on an error report (``POLLERR``: a connected datagram socket's ICMP
error, a refused connection, a reset), runs the fd's callbacks once and closes
its handle for the fd, which it keeps: the fd is then never reported again,
and adding a reader for it raises ``RuntimeError``. The error is transient
(the call that reads it clears it), so a later wait would sleep forever. Each
registration's callback therefore carries a token that only the loop holds; a
weak reference to it (the registration kept in ``Fd.armed``) sees the loop drop
it, and the next wait on the fd clears the loop's closed handle and registers
afresh.
"""

from __future__ import annotations

import asyncio
import weakref
from asyncio.selector_events import BaseSelectorEventLoop
from collections.abc import Callable
from functools import partial

from .._ops import READ, WRITE
from .loop import Fd, LoopWaiter


class _Token:
    """Passed to the loop with a registration's callback, and held by nothing else."""

    __slots__ = ("__weakref__",)


def _lost(entry: Fd, event: int, registration: weakref.ref[_Token]) -> None:
    """The token of ``registration``, ``entry``'s fd's registration for ``event``, died:
    the loop dropped it. If it is still the entry's (``entry.armed``), the loop let go
    by itself (a registration dropped on purpose is disarmed first): the entry is
    marked unwatched and ``lost``."""
    if entry.armed[event] is registration:
        entry.armed[event] = False
        entry.lost = True


class ReadinessWaiter(LoopWaiter):
    """Waits with ``loop.add_reader``/``add_writer``; one instance per loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self._poll_first = isinstance(loop, BaseSelectorEventLoop)
        self._add = (loop.add_reader, loop.add_writer)
        self._remove = (loop.remove_reader, loop.remove_writer)

    def _arm(self, fd: int, event: int) -> None:
        entry = self._fds[fd]
        if entry.lost:  # the loop closed its handle for the fd: make it let go of it first
            entry.lost = False
            self._unregister(fd, event)  # (not watched: wait() is arming it)
            if not entry.armed[1 - event]:  # (lost too, or never armed; never a live one)
                self._unregister(fd, 1 - event)
        token = _Token()
        registration = weakref.ref(token, partial(_lost, entry, event))
        callback = self._ready_stale if self._poll_first else self._ready
        try:
            self._add[event](fd, callback, fd, event, token)
        except BaseException:
            entry.armed[event] = False
            raise
        entry.armed[event] = registration

    def _unregister(self, fd: int, event: int) -> None:
        """Ask the loop to stop watching ``fd`` for ``event``, if it can (not: a loop
        closed meanwhile)."""
        try:
            self._remove[event](fd)
        except (RuntimeError, OSError, ValueError):  # e.g. the loop is closed
            pass

    def _ready(self, fd: int, event: int, token: _Token) -> None:
        """A report of a loop whose reports are never stale (uvloop)."""
        entry = self._fds.get(fd)
        if entry is None:  # pragma: no cover - forget() unregisters first
            return
        if not self._wake(entry, event):
            self._drop(fd, entry, event)

    def _ready_stale(self, fd: int, event: int, token: _Token) -> None:
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
        entry.armed[event] = False  # (first: the registration's token dies in remove)
        self._remove[event](fd)
        if not entry.armed[READ] and not entry.armed[WRITE]:
            del self._fds[fd]

    def _disarm(self, fd: int, entry: Fd | None, close: Callable[[], None] | None) -> None:
        for event in (READ, WRITE):
            if entry is not None and (entry.armed[event] or entry.lost):
                self._unregister(fd, event)
        if close is not None:
            close()
