"""Which waiter serves the async library running now, chosen at call time.

asyncio's running loop is looked up first (a C call): its waiter is made once
per loop, a readiness waiter where the loop has ``add_reader``, else a thread
waiter. With no asyncio loop running, the waiter of the running ``trio.run``
(anyio's trio backend included) is looked for, if the program imported trio.
Nothing is configured, and nothing is imported that the running program does
not already use.

The last call's waiter is kept, with what it serves (``owner``: the loop, or
the trio run's runner): a call finds it again with one C call and one
comparison on asyncio, and one attribute read more under trio (where the
run's ``RunVar`` costs two Python calls). One global holds both, so a thread
running another loop never pairs one's loop with the other's waiter.
"""

from __future__ import annotations

import asyncio
import select
import sys
import threading
import weakref
from asyncio.selector_events import BaseSelectorEventLoop
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

from .base import Waiter
from .loop import LoopWaiter
from .readiness import ReadinessWaiter
from .thread import ThreadWaiter

T = TypeVar("T")

_get_running_loop = asyncio._get_running_loop
_edge_waiter: type[LoopWaiter] | None = None  # EdgeWaiter, where there is epoll (Linux)
if hasattr(select, "epoll"):
    from .epoll import EdgeWaiter as _edge_waiter


class _Nobody:
    """Stands for "no call yet" in ``_last``: its owner is no loop and no run."""

    owner: object = object()


# The waiter of the last call, whose ``owner`` is its loop (or its trio run's runner): one
# global, read once, so that a thread running another loop, which may replace it
# meanwhile, never pairs one's loop with the other's waiter. A strong reference to one
# loop (or run) at most.
_last: Any = _Nobody()
_waiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopWaiter] = (
    weakref.WeakKeyDictionary()
)
_making = threading.Lock()  # held while a loop's waiter is made (and closed loops' let go)


def current() -> Waiter:
    """The waiter of the running async library.

    Raises ``RuntimeError('no running event loop')`` outside one, as asyncio does.
    """
    global _last
    last = _last
    loop = _get_running_loop()
    if last.owner is loop:  # the usual case: the last call's loop (never None)
        return last  # type: ignore[no-any-return]
    if loop is not None:
        waiter: Waiter = waiter_for(loop)
        _last = waiter
        return waiter
    if _trio_context is not None and last.owner is getattr(_trio_context, "runner", None):
        return last  # type: ignore[no-any-return]  # (the last call's trio run, this thread's)
    if _trio_get is not None:
        try:
            waiter = _trio_get()  # (the run's RunVar, read here: no frame of trio.current's)
        except LookupError:  # the run's first call: make its waiter
            pass
        except RuntimeError:  # not in a trio run
            raise RuntimeError("no running event loop") from None
        else:
            _remember_trio(waiter)
            return waiter
    return _not_asyncio()


# The get() of asocket._waiters.trio's RunVar, once a call found trio imported (None: not yet).
_trio_get: Callable[[], Waiter] | None = None
# trio's per-thread run context (``runner`` is set while a run is under way in the
# thread), where this trio has one (see ``asocket._waiters.trio.RUN_CONTEXT``).
_trio_context: Any = None


def _remember_trio(waiter: Any) -> None:
    """Keep ``waiter`` as the last call's, its owner the run's runner, for the next
    call's quick lookup."""
    global _last
    runner = getattr(_trio_context, "runner", None)
    if runner is not None:
        waiter.owner = runner
        _last = waiter


def _not_asyncio() -> Waiter:
    """No asyncio loop runs: the waiter of the running ``trio.run`` (looked for only if
    the program imported trio; made on its first call), else
    ``RuntimeError('no running event loop')``."""
    global _trio_get, _trio_context
    if "trio" in sys.modules:
        from . import trio

        notice_trio()
        _trio_get = trio.CURRENT.get
        _trio_context = trio.RUN_CONTEXT
        waiter = trio.current()
        if waiter is not None:
            _remember_trio(waiter)
            return waiter
    raise RuntimeError("no running event loop")


def notice_trio() -> None:
    """Once the program has imported trio, ``RUNNING.checkpoints`` says True: from then
    on a call asks which library runs it before its syscall (trio's calls must be
    checkpoints). Called where sockets are made (not a hot path)."""
    if "trio" in sys.modules:
        Running.checkpoints = True


class Running:
    """The waiter of whatever async library runs at the moment each member is called.

    The async face hands this to the engine on every call: the lookup (:func:`current`)
    then happens only when the call must wait, not on the hot path of a call that
    completes at once.
    """

    __slots__ = ()

    #: False until the program imports trio (``notice_trio``): asyncio's calls pay one
    #: attribute test for trio's checkpoints, and nothing more, in a program without trio.
    checkpoints = False

    #: The waiter it stands for now (:func:`current`, with no frame of its own).
    now = staticmethod(current)

    async def cancel_point(self) -> None:
        await current().cancel_point()

    async def schedule_point(self) -> None:
        await current().schedule_point()

    async def checkpointed(self, call: Awaitable[T]) -> T:
        return await current().checkpointed(call)

    def clock(self) -> float:
        return current().clock()

    def wait(self, fd: int, event: int, deadline: float | None) -> Awaitable[None]:
        return current().wait(fd, event, deadline)

    async def wait_any(self, fds: Sequence[int], event: int, deadline: float | None) -> list[int]:
        return await current().wait_any(fds, event, deadline)

    def forget(self, fd: int, close: Callable[[], None] | None) -> None:
        current().forget(fd, close)

    def wake(self, fd: int, event: int) -> None:
        current().wake(fd, event)

    async def to_thread(self, fn: Callable[..., T], *args: Any, deadline: float | None) -> T:
        return await current().to_thread(fn, *args, deadline=deadline)

    async def sleep(self, delay: float) -> None:
        await current().sleep(delay)


RUNNING: Final = Running()


def waiter_for(loop: asyncio.AbstractEventLoop) -> LoopWaiter:
    """The waiter of ``loop``, made once: the edge waiter for asyncio's selector loop
    on Linux (epoll), the readiness waiter for the other loops with ``add_reader``
    (uvloop; the selector loop elsewhere), a thread waiter for loops without.

    Measured (``benchmarks/instructions.py``): on the selector loop, whose callbacks
    and event processing are Python, the edge waiter's one callback per batch of
    reports costs far less than a callback per report (and the stale reports it
    avoids); uvloop dispatches each report in C, and there the edge waiter's
    Python dispatch costs more than it saves. The edge waiter needs a
    descriptor: a loop first used with none left gets the readiness waiter, so that
    a wait never fails for want of one.

    Threads running loops at once may each make one: that is done under a lock (the
    lookup of one already made is not)."""
    waiter = _waiters.get(loop)
    if waiter is None:
        with _making:
            waiter = _waiters.get(loop)
            if waiter is None:
                waiter = _waiters[loop] = _make(loop)
    return waiter


def _make(loop: asyncio.AbstractEventLoop) -> LoopWaiter:
    _release_closed()
    if not _has_readiness(loop):
        return ThreadWaiter(loop)
    if _edge_waiter is None or not isinstance(loop, BaseSelectorEventLoop):
        return ReadinessWaiter(loop)
    try:
        return _edge_waiter(loop)
    except OSError:  # EMFILE, ENFILE, ENOMEM
        return ReadinessWaiter(loop)


def _release_closed() -> None:
    """Let the waiters of closed loops go now, not when the loops are collected (the
    edge waiter holds a descriptor): a program that runs loop after loop keeps one.
    (Under ``_making``.)"""
    for loop, waiter in list(_waiters.items()):
        if loop.is_closed():
            del _waiters[loop]
            waiter.close()


def _has_readiness(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop`` has ``add_reader``. Asked with an invalid descriptor, so that no
    descriptor is needed (the fd table may be full): a loop without the readiness API
    refuses the call itself (``NotImplementedError``), one with it refuses the fd."""
    try:
        loop.add_reader(-1, _noop)
    except NotImplementedError:
        return False
    except (ValueError, OSError, TypeError):
        return True
    loop.remove_reader(-1)  # pragma: no cover - no known loop takes -1
    return True


def _noop() -> None:  # pragma: no cover - never called
    pass
