"""The trio waiter: asocket's waits on ``trio.run`` (and anyio's trio backend).

Imported by ``current.current()`` only once a call finds no asyncio loop running
and trio imported (``sys.modules``), so importing asocket never imports trio.

* **One trio wait per fd and direction.** trio lets one task wait per fd and
  direction (a second one gets ``BusyResourceError``). The first asocket task
  to wait becomes the *leader* and does the ``wait_readable``/``wait_writable``;
  the others park as *followers* and are woken when the leader's wait ends.
  If the leader leaves early (its cancel scope or deadline fired), the
  followers are woken too: one of them becomes the next leader, the others
  park again (a false positive is allowed by the Waiter protocol: the core
  retries the syscall and waits again).
* **Deadlines** are on trio's clock (``trio.current_time()``): a
  ``trio.testing.MockClock`` makes a timeout pass instantly.
* **Close**: ``forget`` wakes every follower with ``OSError(EBADF)`` and calls
  ``trio.lowlevel.notify_closing(fd)``, which wakes the leader (its
  ``ClosedResourceError`` becomes ``OSError(EBADF)``) and drops the fd from
  trio's epoll before the OS close.
* **Wake** (``wake``: a state change readiness does not report, as
  ``shutdown(SHUT_WR)`` of a full ``AF_UNIX`` socket): ``notify_closing`` too,
  whose ``ClosedResourceError`` a leader takes as a wake-up while the fd is
  still known (``forget`` drops it first).
* **Checkpoints**: trio's own socket calls are checkpoints, and so are
  asocket's under trio (``checkpoints = True``): ``cancel_point()``
  (``checkpoint_if_cancelled``) before the syscall, ``schedule_point()``
  (``cancel_shielded_checkpoint``) after one that completed without waiting.
  ``waits`` counts this waiter's suspensions, so ``checkpointed(call)`` can tell
  whether a call of several steps already yielded.
* **Threads**: ``to_thread`` (the resolver) runs in ``trio.to_thread.run_sync``
  with ``abandon_on_cancel=True`` (``cancellable=True`` on trio < 0.23): a
  cancelled lookup is abandoned, as trio's own ``getaddrinfo`` is.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import outcome
import trio
from trio.lowlevel import (
    Abort,
    RunVar,
    Task,
    cancel_shielded_checkpoint,
    checkpoint_if_cancelled,
    current_task,
    notify_closing,
    reschedule,
    wait_readable,
    wait_task_rescheduled,
    wait_writable,
)

from .._ops import READ, WRITE
from .._timeouts import timed_out
from .base import ebadf

T = TypeVar("T")

_WAIT = (wait_readable, wait_writable)

# trio's per-thread run context, whose ``runner`` is set while a run is under way in the
# thread: ``current.current()`` reads it to know the run of its last call is still the
# one running (one attribute read, where the run's RunVar costs two Python calls per
# call). Not public API: where a trio release moves it, None, and the RunVar is read.
RUN_CONTEXT: Any = getattr(getattr(trio, "_core", None), "_run", None)
RUN_CONTEXT = getattr(RUN_CONTEXT, "GLOBAL_RUN_CONTEXT", None)

# trio 0.23 renamed run_sync's ``cancellable`` to ``abandon_on_cancel``.
_ABANDON: dict[str, Any] = {
    "abandon_on_cancel"
    if "abandon_on_cancel" in inspect.signature(trio.to_thread.run_sync).parameters
    else "cancellable": True
}


class _Fd:
    """The asocket waiters of one fd: a leader and followers per direction."""

    __slots__ = ("followers", "leading")

    def __init__(self) -> None:
        self.leading = [False, False]  # per direction: an asocket task waits on trio
        self.followers: list[list[Task]] = [[], []]


def _wake(tasks: list[Task], ready: bool | None) -> None:
    """Reschedule ``tasks`` (each outcome is used once): with ``ready``, or with
    ``OSError(EBADF)`` where it is None (the fd was forgotten)."""
    for task in tasks:
        reschedule(task, outcome.Error(ebadf()) if ready is None else outcome.Value(ready))


def _end_waits(fd: int) -> None:
    """End every trio wait on ``fd`` (``notify_closing``: each raises
    ``ClosedResourceError``); nothing outside ``trio.run``, where nothing waits."""
    try:
        notify_closing(fd)
    except RuntimeError:  # not inside trio.run any more
        pass


async def _follow(followers: list[Task]) -> bool:
    """Park in ``followers`` until the leader's wait ends: True if it saw readiness."""
    task = current_task()
    followers.append(task)

    def abort(_: Any) -> Abort:
        followers.remove(task)  # (a rescheduled task is never aborted)
        return Abort.SUCCEEDED

    ready: bool = await wait_task_rescheduled(abort)
    return ready


class TrioWaiter:
    """Waits with trio's I/O primitives; one instance per ``trio.run``."""

    clock = staticmethod(trio.current_time)
    checkpoints = True  # every awaitable call is a checkpoint: see checkpointed()

    def __init__(self) -> None:
        self._fds: dict[int, _Fd] = {}
        self.waits = 0  # suspensions so far (see checkpointed())
        self.owner: object = None  # the run's runner, once known (current.current()'s cache key)

    # -- checkpoints ----------------------------------------------------------

    def now(self) -> TrioWaiter:
        """Itself (see ``Waiter.now``)."""
        return self

    cancel_point = staticmethod(checkpoint_if_cancelled)
    schedule_point = staticmethod(cancel_shielded_checkpoint)

    async def checkpointed(self, call: Awaitable[T]) -> T:
        """Await ``call`` as trio's own socket calls run: a cancel point before it, and a
        schedule point after it if it completed (or failed) without suspending."""
        try:
            await checkpoint_if_cancelled()
        except BaseException:
            if inspect.iscoroutine(call):
                call.close()
            raise
        waits = self.waits
        try:
            return await call
        finally:
            if self.waits == waits:
                await cancel_shielded_checkpoint()

    # -- waiting --------------------------------------------------------------

    def wait(self, fd: int, event: int, deadline: float | None) -> Awaitable[None]:
        """Return once ``fd`` may be ready for ``event``; ``TimeoutError('timed out')``
        at ``deadline`` (trio's clock), ``OSError(EBADF)`` if ``fd`` is forgotten."""
        self.waits += 1
        if deadline is None:
            return self._wait(fd, event)  # (no frame of its own: the caller awaits it)
        return self._wait_until(fd, event, deadline)

    async def _wait_until(self, fd: int, event: int, deadline: float) -> None:
        with trio.CancelScope(deadline=deadline) as scope:
            await self._wait(fd, event)
        if scope.cancelled_caught:
            raise timed_out()

    async def _wait(self, fd: int, event: int) -> None:
        entry = self._fds.get(fd)
        if entry is None:  # (kept until forget(): it holds nothing between waits)
            entry = self._fds[fd] = _Fd()
        leading = entry.leading
        while leading[event]:
            # An asocket task already waits on trio for this fd and direction: park until
            # its wait ends. True: it saw readiness; False: it left early, lead instead.
            if await _follow(entry.followers[event]):
                return
        leading[event] = True
        ready = False
        try:
            await _WAIT[event](fd)
            ready = True
        except trio.ClosedResourceError:  # notify_closing(): forget() or wake() was called
            if self._fds.get(fd) is not entry:
                raise ebadf() from None  # forgotten (closed)
            ready = True  # woken (wake()): retry
        finally:
            leading[event] = False
            followers = entry.followers[event]
            if followers:
                entry.followers[event] = []
                # Served: every follower retries. Left early: the followers race to lead.
                _wake(followers, ready)

    async def wait_any(self, fds: Sequence[int], event: int, deadline: float | None) -> list[int]:
        """Wait on each fd at once; return those whose wait ended first (false positives
        allowed, a forgotten fd included), or ``[]`` once ``deadline`` passes."""
        if len(fds) == 1:
            try:
                await self.wait(fds[0], event, deadline)
            except TimeoutError:
                return []
            except OSError:
                pass
            return list(fds)
        self.waits += 1
        ready: list[int] = []

        async def one(fd: int, done: trio.CancelScope) -> None:
            try:
                await self._wait(fd, event)
            except OSError:
                pass
            ready.append(fd)
            done.cancel()

        with trio.CancelScope(deadline=math.inf if deadline is None else deadline):
            async with trio.open_nursery() as nursery:
                for fd in fds:
                    nursery.start_soon(one, fd, nursery.cancel_scope)
        return ready

    def wake(self, fd: int, event: int) -> None:
        """Wake the tasks waiting on ``fd`` for ``event`` (each retries its syscall).
        trio has no other way to end a wait on an fd than ``notify_closing``, which ends
        every wait on it, in both directions: the leaders take it as a wake-up since the
        fd is still known here (``forget`` drops it first), and wait again if need be."""
        entry = self._fds.get(fd)
        if entry is not None and entry.leading[event]:
            _end_waits(fd)  # (no leader, no followers: they are woken when a leader's ends)

    def forget(self, fd: int, close: Callable[[], None] | None) -> None:
        """Wake ``fd``'s waiters with ``OSError(EBADF)``, drop it from trio, then ``close()``."""
        entry = self._fds.pop(fd, None)
        if entry is not None:
            for event in (READ, WRITE):
                followers = entry.followers[event]
                if followers:
                    entry.followers[event] = []
                    _wake(followers, None)
        _end_waits(fd)  # wakes a leader (and any other trio waiter) on fd
        if close is not None:
            close()

    # -- threads and time -----------------------------------------------------

    async def to_thread(self, fn: Callable[..., T], *args: Any, deadline: float | None = None) -> T:
        """``fn(*args)`` in a worker thread; a cancellation (or ``deadline``: then
        ``TimeoutError('timed out')``) abandons the thread, as trio's getaddrinfo does."""
        self.waits += 1
        if deadline is None:
            result: T = await trio.to_thread.run_sync(fn, *args, **_ABANDON)
            return result
        with trio.CancelScope(deadline=deadline) as scope:
            result = await trio.to_thread.run_sync(fn, *args, **_ABANDON)
            return result
        assert scope.cancelled_caught
        raise timed_out()

    async def sleep(self, delay: float) -> None:
        """``trio.sleep(delay)``."""
        self.waits += 1
        await trio.sleep(delay)


CURRENT: RunVar[TrioWaiter] = RunVar("asocket.waiter")  # (read by current.current())


def current() -> TrioWaiter | None:
    """The waiter of the running ``trio.run`` (made on first use); None outside one."""
    try:
        return CURRENT.get()
    except LookupError:
        waiter = TrioWaiter()
        CURRENT.set(waiter)
        return waiter
    except RuntimeError:  # not in a trio run (e.g. another thread)
        return None
