"""The trio waiter: asocket's waits on ``trio.run`` (and anyio's trio backend).

Imported only once a call finds itself under trio (``sys.modules`` has trio and
its run is active), so importing asocket never imports trio.

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
* **Checkpoints**: trio's own socket calls are checkpoints. ``before()`` and
  ``after()`` are the two halves (``checkpoint_if_cancelled`` before the
  syscall, ``cancel_shielded_checkpoint`` after one that completed without
  waiting); ``waits`` counts the suspensions of this waiter, so a caller can
  tell whether its call already yielded (``strict`` says the hooks exist).
* **Threads**: ``to_thread``/``getaddrinfo`` run in ``trio.to_thread.run_sync``
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

from ._timeouts import timed_out
from ._waiter import READ, AddrInfo, NoTwins, ebadf, getaddrinfo

T = TypeVar("T")

_WAIT = (wait_readable, wait_writable)

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


class TrioWaiter(NoTwins):
    """Waits with trio's I/O primitives; one instance per ``trio.run``."""

    clock = staticmethod(trio.current_time)
    strict = True  # calls must be checkpoints: see before() / after() / waits

    def __init__(self) -> None:
        self._fds: dict[int, _Fd] = {}
        self.waits = 0  # suspensions so far (before/after bookkeeping)

    # -- checkpoints ----------------------------------------------------------

    before = staticmethod(checkpoint_if_cancelled)
    after = staticmethod(cancel_shielded_checkpoint)

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

    async def wait(self, fd: int, event: int, deadline: float | None) -> None:
        """Return once ``fd`` may be ready for ``event``; ``TimeoutError('timed out')``
        at ``deadline`` (trio's clock), ``OSError(EBADF)`` if ``fd`` is forgotten."""
        self.waits += 1
        if deadline is None:
            await self._wait(fd, event)
            return
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
            task = current_task()
            followers = entry.followers[event]
            followers.append(task)

            def abort(_: Any, followers: list[Task] = followers, task: Task = task) -> Abort:
                followers.remove(task)  # (a rescheduled task is never aborted)
                return Abort.SUCCEEDED

            if await wait_task_rescheduled(abort):
                return
        leading[event] = True
        ready = False
        try:
            await _WAIT[event](fd)
            ready = True
        except trio.ClosedResourceError:  # notify_closing(): forget() was called
            raise ebadf() from None
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

    def forget(self, fd: int, close: Callable[[], None] | None) -> None:
        """Wake ``fd``'s waiters with ``OSError(EBADF)``, drop it from trio, then ``close()``."""
        entry = self._fds.pop(fd, None)
        if entry is not None:
            for event in (READ, 1 - READ):
                followers = entry.followers[event]
                if followers:
                    entry.followers[event] = []
                    _wake(followers, None)
        try:
            notify_closing(fd)  # wakes a leader (and any other trio waiter) on fd
        except RuntimeError:  # not inside trio.run any more: nothing waits
            pass
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

    async def getaddrinfo(
        self,
        host: Any,
        port: Any,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
        *,
        deadline: float | None = None,
    ) -> list[AddrInfo]:
        """The stdlib's ``getaddrinfo`` in a worker thread (:meth:`to_thread`)."""
        return await self.to_thread(
            getaddrinfo, host, port, family, type, proto, flags, deadline=deadline
        )

    async def sleep(self, delay: float) -> None:
        """``trio.sleep(delay)``."""
        self.waits += 1
        await trio.sleep(delay)


_CURRENT: RunVar[TrioWaiter] = RunVar("asocket.waiter")


def current() -> TrioWaiter:
    """The waiter of the running ``trio.run`` (made on first use)."""
    try:
        return _CURRENT.get()
    except LookupError:
        waiter = TrioWaiter()
        _CURRENT.set(waiter)
        return waiter
