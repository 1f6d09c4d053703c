"""The edge waiter: asyncio's selector loop on Linux.

The waiter keeps an epoll descriptor of its own, and the loop watches only
that one (``add_reader``): when it is readable, :meth:`EdgeWaiter._drain` takes
every event at once (``epoll_wait`` without a timeout) and wakes the tasks
waiting for them (``loop.LoopWaiter``'s fan-out).

Each fd is registered once, on its first wait, for both directions and
edge-triggered (``EPOLLET``), and stays registered until it is forgotten
(closed). An edge-triggered registration reports a change (bytes arrived, room
to send, the end of the stream, an error), not a state, so:

* the registration costs nothing per wait (no ``epoll_ctl``) and nothing when
  nobody waits (no report repeated while the data sits there);
* the loop runs one callback per batch of reports, not one per report;
* a report is never stale: the selector loop would report, once more, the
  request a woken task is about to read (``readiness``);
* a wait must follow a call that found the fd not ready, in the same step of the
  task (the engine's attempt that would block, or a look at the fd's state):
  it sleeps until the next change. Every wait of the engine does; the only
  other driver, Happy Eyeballs (``_connect``), looks at each connection before
  each wait.

The engine's read hint still asks ``poll()`` (``probe``): the reports cannot
tell, without a syscall, what the kernel received since the last batch was
taken (tried: a read after a quick peer's answer then waited a loop iteration
every time, and a 1-connection ping-pong ran at half speed).

Why not uvloop too: uvloop processes each report in C, and measured there
(``benchmarks/instructions.py``) this waiter's dispatch in Python costs more
than it saves (``current.waiter_for``).
"""

from __future__ import annotations

import asyncio
import select
from collections.abc import Callable

from .._ops import READ, WRITE
from .loop import Fd, LoopWaiter

_MASK = select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET
_READABLE = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
_WRITABLE = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR
_BATCH = 256  # events per epoll_wait; more are taken on the loop's next iteration


class EdgeWaiter(LoopWaiter):
    """Waits through an edge-triggered epoll descriptor the loop watches; one per loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self._epoll = select.epoll()
        self._poll = self._epoll.poll
        try:
            loop.add_reader(self._epoll.fileno(), self._drain)
        except BaseException:
            self._epoll.close()
            raise

    def close(self) -> None:
        """Close the epoll descriptor (the loop is closed)."""
        super().close()
        self._epoll.close()

    def _arm(self, fd: int, event: int) -> None:
        entry = self._fds[fd]
        if entry.armed[1 - event]:
            return  # registered at its first wait, for both directions
        try:
            self._epoll.register(fd, _MASK)
        except BaseException:
            entry.armed[event] = False
            if not any(entry.waiters):
                del self._fds[fd]
            raise
        entry.armed[1 - event] = True

    def _drain(self) -> None:
        """In the loop, when the epoll descriptor is readable: wake the tasks waiting
        for what it reports."""
        fds = self._fds
        try:
            events = self._poll(0, _BATCH)
        except OSError:  # pragma: no cover - closed under the loop
            return
        for fd, mask in events:
            entry = fds.get(fd)
            if entry is None:  # forgotten since (unregistered: a report already queued)
                continue
            if mask & _READABLE and entry.waiters[READ]:
                self._wake(entry, READ)
            if mask & _WRITABLE and entry.waiters[WRITE]:
                self._wake(entry, WRITE)

    def _disarm(self, fd: int, entry: Fd | None, close: Callable[[], None] | None) -> None:
        if entry is not None and (entry.armed[READ] or entry.armed[WRITE]):
            try:
                self._epoll.unregister(fd)
            except (OSError, ValueError):  # e.g. the epoll descriptor is closed
                pass
        if close is not None:
            close()
