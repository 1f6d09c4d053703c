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

It also tells the engine's read hint, without a syscall, whether bytes arrived
since a read emptied a TCP socket (:class:`EdgeProbe`), where the other waiters
ask ``poll()`` (``probe``).

Why not uvloop too: uvloop processes each report in C, and measured there
(``benchmarks/instructions.py``) this waiter's dispatch in Python costs more
than the ``poll()`` it saves (``current.waiter_for``).
"""

from __future__ import annotations

import asyncio
import select
import socket
from collections.abc import Callable

from .._ops import READ, WRITE
from .loop import Fd, LoopWaiter

_EPOLLIN = select.EPOLLIN
_EPOLLOUT = select.EPOLLOUT
_EPOLLPRI = select.EPOLLPRI
_EPOLLRDHUP = select.EPOLLRDHUP
_EPOLLHUP = select.EPOLLHUP
_EPOLLERR = select.EPOLLERR
_MASK = _EPOLLIN | _EPOLLOUT | _EPOLLPRI | _EPOLLRDHUP | select.EPOLLET
_READABLE = _EPOLLIN | _EPOLLRDHUP | _EPOLLHUP | _EPOLLERR
_WRITABLE = _EPOLLOUT | _EPOLLHUP | _EPOLLERR
# Reports after which a short read no longer says "nothing left": the end of the stream,
# an error, and urgent data (a TCP read stops at its mark, bytes left behind it).
_UNSETTLED = _EPOLLRDHUP | _EPOLLHUP | _EPOLLERR | _EPOLLPRI
_BATCH = 256  # events per epoll_wait; more are taken on the loop's next iteration


class EdgeFd(Fd):
    """:class:`~.loop.Fd` with what the read hint's :class:`EdgeProbe` reads."""

    __slots__ = ("reads", "unsettled")

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0  # readability reports so far
        self.unsettled = False  # an end, error or urgent data was reported: probes say "look"


class EdgeProbe:
    """The read hint's probe of a TCP socket served by an :class:`EdgeWaiter`: whether a
    read may find something, from the reports alone (no syscall).

    The engine calls :meth:`drained` after a read that returned fewer bytes than it
    asked for: a TCP receive stops short only when the socket has nothing more (or at
    urgent data, which is reported). From then on the socket can hold bytes only if
    a readability report came since, so the probe says "nothing" until one does.
    """

    __slots__ = ("_entry", "_mark")

    def __init__(self, entry: EdgeFd) -> None:
        self._entry = entry
        self._mark = -1  # the reports counted at the last drained(): none yet

    def look(self, timeout: float) -> bool:
        """True if a read may find bytes, the end of the stream or an error (the
        engine's probe, called with ``0``: a bound method is a cheaper call than
        ``__call__``)."""
        entry = self._entry
        return entry.reads != self._mark or entry.unsettled

    def drained(self) -> None:
        """A read just found the socket empty (it returned short)."""
        self._mark = self._entry.reads


class EdgeWaiter(LoopWaiter):
    """Waits through an edge-triggered epoll descriptor the loop watches; one per loop."""

    _entry_type = EdgeFd

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
        for what it reports, count the readability reports (for the probes)."""
        fds: dict[int, EdgeFd] = self._fds  # type: ignore[assignment]  # (its entries)
        try:
            events = self._poll(0, _BATCH)
        except OSError:  # pragma: no cover - closed under the loop
            return
        for fd, mask in events:
            entry = fds.get(fd)
            if entry is None:  # forgotten since (unregistered: a report already queued)
                continue
            if mask & _READABLE:
                entry.reads += 1
                if mask & _UNSETTLED:
                    entry.unsettled = True
                if entry.waiters[READ]:
                    self._wake(entry, READ)
            elif mask & _EPOLLPRI:
                entry.unsettled = True
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

    def probe(
        self, sock: socket.socket
    ) -> tuple[Callable[[float], bool], Callable[[], None]] | None:
        """The read hint's probe for ``sock`` and its ``drained`` hook, if its reports
        can tell (a TCP socket registered here), else None (the caller falls back to
        ``poll()``)."""
        if sock.type != socket.SOCK_STREAM or sock.family not in _INET:
            return None
        entry = self._fds.get(sock.fileno())
        if not isinstance(entry, EdgeFd) or not entry.armed[READ]:
            return None
        made = EdgeProbe(entry)
        return made.look, made.drained


_INET = (socket.AF_INET, socket.AF_INET6)
