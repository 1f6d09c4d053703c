"""The thread waiter: loops without ``add_reader`` (proactor-style loops).

Such a loop cannot watch a descriptor; it can only perform whole operations
(``sock_recv``...), and an operation it completed for a task that was
cancelled meanwhile has consumed data that nobody receives. So asocket hands
it no operation: one helper thread per process watches the fds that tasks on
such loops wait on, with the platform's selector, and reports readiness to each
fd's loop (``call_soon_threadsafe``). The syscall runs in the task as on every
other loop, so cancellation and timeouts lose nothing here either.

A loop's thread says what it wants watched (under the helper's lock) and pokes
the helper through a socketpair. A report disarms what it reports (one shot:
the selector is level-triggered and would spin). An fd being forgotten is
unwatched by the helper before the helper itself closes it, so a reused fd
number is never watched by mistake. The helper starts on first use and runs
for the life of the process, holding three descriptors (its selector and the
poke pair).
"""

from __future__ import annotations

import asyncio
import os
import selectors
import threading
from _socket import socket as _RawSocket, socketpair as _socketpair
from collections.abc import Callable

from .._ops import READ, WRITE
from .loop import Fd, LoopWaiter

_MASK = (selectors.EVENT_READ, selectors.EVENT_WRITE)


class ThreadWaiter(LoopWaiter):
    """Readiness from the helper thread's selector; one instance per loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self._helper = helper()

    def _arm(self, fd: int, event: int) -> None:
        self._helper.arm(fd, _MASK[event], self)

    def _disarm(self, fd: int, entry: Fd | None, close: Callable[[], None] | None) -> None:
        self._helper.disarm(fd, close)

    def _ready(self, reports: list[tuple[int, int]]) -> None:
        """In the loop: wake the tasks waiting for what the helper reported."""
        for fd, mask in reports:
            entry = self._fds.get(fd)
            if entry is None:  # forgotten meanwhile (or a stale report: harmless)
                continue
            for event in (READ, WRITE):
                if mask & _MASK[event]:
                    entry.armed[event] = False
                    self._wake(entry, event)
            if not (entry.armed[READ] or entry.armed[WRITE] or any(entry.waiters)):
                del self._fds[fd]


class Helper:
    """The helper thread: watches what the loops want, reports what is ready."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._want: dict[int, tuple[int, ThreadWaiter]] = {}  # fd -> (mask, its waiter)
        self._closes: list[Callable[[], None]] = []  # forgotten while watched: closed here
        self._dead: set[int] = set()  # forgotten while watched: the selector must drop them
        self._watched: set[int] = set()  # what the selector may hold until it looks again
        self._selector = selectors.DefaultSelector()
        # epoll and kqueue drop a descriptor's registration when it is closed, so one
        # may be closed while the helper waits; poll() and select() must be told first.
        self._close_at_once = type(self._selector).__name__ in ("EpollSelector", "KqueueSelector")
        self._poker, self._woken = _socketpair()
        self._poker.setblocking(False)
        self._woken.setblocking(False)
        self._selector.register(self._woken, selectors.EVENT_READ)
        threading.Thread(target=self._run, daemon=True, name="asocket-readiness").start()

    def arm(self, fd: int, mask: int, waiter: ThreadWaiter) -> None:
        """Watch ``fd`` for ``mask`` too, reporting to ``waiter``'s loop."""
        with self._lock:
            old = self._want.get(fd)
            self._want[fd] = ((old[0] if old and old[1] is waiter else 0) | mask, waiter)
        self._poke()

    def disarm(self, fd: int, close: Callable[[], None] | None) -> None:
        """Stop watching ``fd``, then ``close()`` it once the selector has let it go."""
        with self._lock:
            self._want.pop(fd, None)
            watched = fd in self._watched
            if watched:
                self._dead.add(fd)
                if close is not None and not self._close_at_once:
                    self._closes.append(close)
                    close = None
        if close is not None:
            close()
        if watched:
            self._poke()

    def _poke(self) -> None:
        try:
            self._poker.send(b"\0")
        except OSError:  # full: a poke is already pending
            pass

    def _run(self) -> None:
        registered: dict[int, int] = {}
        while True:
            with self._lock:
                want = dict(self._want)
                closes, self._closes = self._closes, []
                dead, self._dead = self._dead, set()
                self._watched = set(registered) | set(want)
            for fd in dead:  # closed, or about to be: its number may already be reused
                if registered.pop(fd, None) is not None:
                    try:
                        self._selector.unregister(fd)
                    except (KeyError, ValueError, OSError):
                        pass
            refused = self._apply(registered, {fd: m for fd, (m, _) in want.items()})
            for close in closes:  # unwatched above: now the OS may close them
                close()
            reports = refused or [
                (key.fd, mask)
                for key, mask in self._selector.select(None if not refused else 0)
                if key.fileobj is not self._woken or _drain(self._woken)
            ]
            self._report(reports, want)

    def _report(
        self, reports: list[tuple[int, int]], want: dict[int, tuple[int, ThreadWaiter]]
    ) -> None:
        """Disarm what is reported (one shot) and post it to each fd's loop."""
        per_waiter: dict[ThreadWaiter, list[tuple[int, int]]] = {}
        with self._lock:
            for fd, mask in reports:
                entry = self._want.get(fd)
                if entry is None:
                    continue
                left = entry[0] & ~mask
                if left:
                    self._want[fd] = (left, entry[1])
                else:
                    del self._want[fd]
                per_waiter.setdefault(entry[1], []).append((fd, mask))
        for waiter, ready in per_waiter.items():
            try:
                waiter.loop.call_soon_threadsafe(waiter._ready, ready)
            except RuntimeError:  # that loop is closed: nobody waits there any more
                pass

    def _apply(self, registered: dict[int, int], want: dict[int, int]) -> list[tuple[int, int]]:
        """Make the selector watch ``want``; an fd it refuses (closed under us) is reported
        ready at once, so its task retries the syscall and meets the error itself."""
        sel = self._selector
        refused: list[tuple[int, int]] = []
        for fd in [fd for fd in registered if fd not in want]:
            del registered[fd]
            try:
                sel.unregister(fd)
            except (KeyError, ValueError, OSError):
                pass
        for fd, mask in want.items():
            if registered.get(fd) == mask:
                continue
            try:
                if fd in registered:
                    try:
                        sel.modify(fd, mask)
                    except OSError:  # the fd number was closed and reused: start over
                        sel.unregister(fd)
                        sel.register(fd, mask)
                else:
                    sel.register(fd, mask)
                registered[fd] = mask
            except (KeyError, ValueError, OSError):
                registered.pop(fd, None)
                refused.append((fd, mask))
        return refused


def _drain(sock: _RawSocket) -> bool:
    """Empty the poke socket; False (a poke is no report)."""
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass
    return False


_helper: Helper | None = None
_helper_lock = threading.Lock()


def _forget_after_fork() -> None:  # the child has no helper thread: start its own
    global _helper, _helper_lock
    _helper = None
    _helper_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def helper() -> Helper:
    """The process's helper thread, started on first use."""
    global _helper
    if _helper is None:
        with _helper_lock:
            if _helper is None:
                _helper = Helper()
    return _helper
