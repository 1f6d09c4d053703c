"""What the asyncio waiters share: the per-fd fan-out of waiting tasks, the clock,
``to_thread``, ``wait_any`` and ``sleep``.

Several tasks may wait on one fd and direction; the loop is asked to watch
each fd and direction once (``_arm``), and one readiness report wakes every
task waiting for it (``_ready``). Loop callbacks only wake futures: the
syscall runs in the task after the wait, so a cancelled wait consumes nothing.

Deadlines share one loop timer per waiter (``Deadlines``): a wait with a
deadline pushes an entry on a heap, and the timer is armed only when that
deadline is the earliest. (A ``call_later`` per wait, a Python ``TimerHandle``
on a heap compared in Python and then cancelled, made a ping-pong in timeout
mode cost 1.52x the instructions of blocking mode on asyncio's loop; a timer
per waiter and a coroutine per wait, 1.21x; the future alone, 1.16x.)
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from heapq import heapify, heappop, heappush
from typing import Any, TypeVar

from .._ops import READ, WRITE
from .._timeouts import timed_out
from .base import NoCheckpoints, ebadf

T = TypeVar("T")


class Fd:
    """One fd's waiting tasks per direction, and whether the loop watches it."""

    __slots__ = ("armed", "lost", "stale", "waiters")

    def __init__(self) -> None:
        self.waiters: list[list[asyncio.Future[None]]] = [[], []]
        # Whether the loop watches the fd for each direction: True, or (readiness) the
        # registration the loop holds; False if not.
        self.armed: list[object] = [False, False]
        self.lost = False  # (readiness) the loop let go of a registration (uvloop, after an error)
        self.stale = [False, False]  # (readiness) the next event reports what a woken task reads


class Deadlines:
    """The deadlines of one loop's waits, and the one loop timer that fails each wait
    at its deadline (with ``TimeoutError('timed out')``).

    A heap of entries ``(deadline, order, future, fd, event)``. A wait's future is
    awaited by its caller's own frame, as without a deadline: nothing runs when the
    wait ends. Ended waits (their futures done) leave the heap when a new deadline
    finds them at the top, when the timer passes them, or all at once when the heap
    has doubled since it last held only live ones (so a long deadline at the top
    keeps no growing tail behind it). The timer is armed for the earliest deadline
    pushed since it last fired; it may fire before the earliest live one (that wait
    ended, or the loop's clock runs ahead of ``clock``: uvloop caches it), and then
    only re-arms. A wait never times out before its deadline on ``clock``."""

    __slots__ = ("_at", "_clock", "_expired", "_heap", "_limit", "_loop", "_order", "_timer")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        clock: Callable[[], float],
        expired: Callable[[int, int, asyncio.Future[None]], None],
    ) -> None:
        self._loop = loop
        self._clock = clock
        self._expired = expired  # (fd, event, future): a wait timed out
        self._heap: list[tuple[float, int, asyncio.Future[None], int, int]] = []
        self._order = itertools.count()  # (ties: entries never compare futures)
        self._limit = 64  # the size at which ended waits are swept out
        self._timer: asyncio.TimerHandle | None = None
        self._at = float("inf")  # the deadline the timer is armed for

    def add(self, fut: asyncio.Future[None], deadline: float, fd: int, event: int) -> None:
        """Fail ``fut``, the wait for ``event`` on ``fd``, at ``deadline`` unless it is
        done first."""
        heap = self._heap
        while heap and heap[0][2].done():  # (the usual case: waits end in deadline order)
            heappop(heap)
        heappush(heap, (deadline, next(self._order), fut, fd, event))
        if deadline < self._at:
            self._arm(deadline)
        elif len(heap) > self._limit:
            heap[:] = [entry for entry in heap if not entry[2].done()]
            heapify(heap)
            self._limit = 2 * len(heap) + 64

    def close(self) -> None:
        """Stop the timer (the loop is closed)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._at = deadline
        self._timer = self._loop.call_later(max(0.0, deadline - self._clock()), self._fire)

    def _fire(self) -> None:
        """The timer: fail every wait whose deadline passed; re-arm for the next one."""
        self._timer = None
        self._at = float("inf")
        heap = self._heap
        now = self._clock()
        while heap:
            deadline, _, fut, fd, event = heap[0]
            if not fut.done():
                if deadline > now:
                    self._arm(deadline)
                    return
                fut.set_exception(timed_out())
                fut.exception()  # (retrieved: a task that moved on leaves no log of it)
                self._expired(fd, event, fut)
            heappop(heap)


class LoopWaiter(NoCheckpoints):
    """Base of the asyncio waiters; one instance per loop. Subclasses say how the
    loop is asked to watch an fd (``_arm``) and to stop watching it (``_disarm``)."""

    clock = staticmethod(time.monotonic)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.owner: object = loop  # (current.current()'s cache key)
        self._fds: dict[int, Fd] = {}
        self._deadlines = Deadlines(loop, self.clock, self._expired)

    # -- what a subclass supplies ---------------------------------------------

    def _arm(self, fd: int, event: int) -> None:
        """Ask the loop to report when ``fd`` is ready for ``event`` (by calling ``_ready``)."""
        raise NotImplementedError  # pragma: no cover - each waiter has its own

    def _disarm(self, fd: int, entry: Fd | None, close: Callable[[], None] | None) -> None:
        """Stop watching ``fd`` (it is being forgotten; ``entry``: its waiters, if it had
        any), then call ``close`` if given, once the loop no longer watches the fd."""
        raise NotImplementedError  # pragma: no cover - each waiter has its own

    def close(self) -> None:
        """Release what the waiter holds, its loop being closed (here: its timer)."""
        self._deadlines.close()

    # -- the fan-out ------------------------------------------------------------

    def wait(self, fd: int, event: int, deadline: float | None) -> Awaitable[None]:
        """Return once ``fd`` may be ready for ``event``; ``TimeoutError`` at ``deadline``,
        ``OSError(EBADF)`` if the fd is forgotten meanwhile.

        The awaitable is the future :meth:`_wake` completes (or ``Deadlines`` fails),
        awaited by the caller's own frame: no coroutine of the waiter's between the
        task and its future. A task cancelled while awaiting it cancels the future,
        which stays in the list, done, until the next wake-up or the next wait on the
        fd drops it; a future that timed out leaves the list at once (its exception's
        traceback holds the caller's frames)."""
        if deadline is not None and deadline <= self.clock():
            raise timed_out()
        entry = self._fds.get(fd)
        if entry is None:
            entry = self._fds[fd] = Fd()
        if not entry.armed[event]:
            entry.armed[event] = True
            self._arm(fd, event)
        fut: asyncio.Future[None] = self.loop.create_future()
        waiters = entry.waiters[event]
        if waiters:  # others wait too (or waited, and were cancelled: drop those)
            waiters[:] = [other for other in waiters if not other.done()]
        waiters.append(fut)
        if deadline is not None:
            self._deadlines.add(fut, deadline, fd, event)
        return fut

    def _expired(self, fd: int, event: int, fut: asyncio.Future[None]) -> None:
        """``Deadlines``: the wait ``fut`` timed out; it leaves the fd's list now."""
        entry = self._fds.get(fd)
        if entry is not None and fut in entry.waiters[event]:
            entry.waiters[event].remove(fut)

    def _wake(self, entry: Fd, event: int) -> bool:
        """Wake every task waiting on ``entry`` for ``event``; False if none waited."""
        waiters = entry.waiters[event]
        if not waiters:
            return False
        entry.waiters[event] = []
        woke = False
        for fut in waiters:
            if not fut.done():  # (a cancelled wait's future stays until now)
                fut.set_result(None)
                woke = True
        return woke

    def wake(self, fd: int, event: int) -> None:
        """Wake every task waiting on ``fd`` for ``event`` (each retries its syscall)."""
        entry = self._fds.get(fd)
        if entry is not None:
            self._wake(entry, event)

    def forget(self, fd: int, close: Callable[[], None] | None) -> None:
        """Wake ``fd``'s waiters with ``OSError(EBADF)``, stop watching it, then ``close()``."""
        entry = self._fds.pop(fd, None)
        if entry is not None:
            for event in (READ, WRITE):
                for fut in entry.waiters[event]:
                    if not fut.done():
                        fut.set_exception(ebadf())
        self._disarm(fd, entry, close)

    # -- the rest of the protocol ---------------------------------------------

    async def to_thread(self, fn: Callable[..., T], *args: Any, deadline: float | None) -> T:
        """``fn(*args)`` on the loop's default executor; ``TimeoutError`` at ``deadline``.

        (The resolver runs as the stdlib's own ``getaddrinfo``: uvloop's native one
        differs from it in details.)
        """
        call = self.loop.run_in_executor(None, fn, *args)
        if deadline is None:
            return await call
        try:
            async with asyncio.timeout_at(self.loop.time() + deadline - self.clock()):
                return await call
        except TimeoutError:
            raise timed_out() from None

    async def wait_any(self, fds: Sequence[int], event: int, deadline: float | None) -> list[int]:
        """Wait on each fd with :meth:`wait` at once: the fds whose wait returned first;
        ``[]`` at ``deadline``."""
        if len(fds) == 1:  # the usual case (one attempt under way): no task needed
            try:
                await self.wait(fds[0], event, deadline)
            except TimeoutError:
                return []
            return list(fds)
        waits = [asyncio.ensure_future(self.wait(fd, event, None)) for fd in fds]
        try:
            timeout = None if deadline is None else max(0.0, deadline - self.clock())
            done, _ = await asyncio.wait(
                waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        return [fd for fd, task in zip(fds, waits, strict=True) if task in done]

    async def sleep(self, delay: float) -> None:
        """``asyncio.sleep(delay)``."""
        await asyncio.sleep(delay)
