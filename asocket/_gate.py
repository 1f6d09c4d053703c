"""The sync face's close-while-blocked protocol: ``close()`` from one thread wakes
another thread blocked on the socket, in the kernel or in ``poll()``.

Linux wakes a thread blocked in ``recv``/``accept``/``poll`` on ``shutdown()``,
not on ``close()``; and a descriptor closed under a blocked thread could be
reused by a new socket that the thread would then watch by mistake. So:

1. every call that may block passes the gate (:meth:`Gate.call`), so ``close()``
   knows whether a thread is inside;
2. ``close()`` with threads inside detaches the descriptor (a woken thread finds
   ``fileno() == -1``), shuts it down (which wakes them) and leaves the OS close
   to the last thread out, so the number cannot be reused while one may use it;
3. a thread woken that way raises ``OSError(EBADF)``, whatever the shutdown made
   its call return (``EPIPE``, ``EINVAL``, an empty read).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any, TypeVar

from ._ops import READ, Op
from ._socket import RawSocket, close_fd
from ._waiters.base import ebadf

T = TypeVar("T")


def _empty(result: Any) -> bool:
    """A read's result that says end of file: ``b''``, 0, or a tuple that starts so."""
    return not (result[0] if type(result) is tuple else result)


class Gate:
    """Who is blocked on one socket, and the close that wakes them."""

    __slots__ = ("_inside", "_pending", "_raw", "closing")

    def __init__(self, raw: socket.socket) -> None:
        self._raw = raw  # the raw socket the calls are made on
        self._inside: list[None] = []  # one entry per thread inside a call that may block
        self._pending: list[int] = []  # a detached fd that the last thread out closes
        self.closing = False

    def call(self, op: Op | None, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``, a call on the raw socket that may block; ``OSError(EBADF)`` if
        :meth:`close` woke it. For a read (``op.event == READ``) an empty result then means
        EBADF, not end of file. (The sync face's blocking-mode calls are this, directly.)"""
        # This call enters ``_inside`` first, then looks at ``closing``; close() sets
        # ``closing`` first, then looks at ``_inside``. So either this call sees
        # ``closing`` (and takes the closing path), or close() sees this call's entry
        # (and wakes it by shutdown). Looking at ``closing`` before the entry would
        # leave a window: close() finds nobody inside and closes the descriptor, while
        # this call goes on to block on it, and Linux does not wake a blocked recv()
        # whose descriptor is closed.
        inside = self._inside
        inside.append(None)
        if self.closing:
            inside.pop()
            return self._call_closing(op, fn, args)
        try:
            result = fn(*args)
        except BaseException as exc:
            inside.pop()
            if self.closing:
                self._left()
                if isinstance(exc, OSError):  # woken by close(): EPIPE, EINVAL... mean EBADF
                    raise ebadf() from None
            raise
        inside.pop()
        if self.closing:
            self._left()
            if op is not None and op.event == READ and _empty(result):
                raise ebadf()  # the "end of file" a shutdown by close() produced
        return result

    def _call_closing(self, op: Op | None, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """:meth:`call` once ``close()`` has begun (in another thread, perhaps still under way)."""
        inside = self._inside
        inside.append(None)
        try:
            if self._raw.fileno() != -1:
                # close() is under way in another thread and may have looked at _inside
                # before the append above: do not start a call it would not wake.
                raise ebadf()
            return fn(*args)
        finally:
            inside.pop()
            self._left()

    def _left(self) -> None:
        """A call left after ``close()`` began: the last one out closes the fd."""
        if not self._inside:
            self._close_pending()

    def close(self, raw: socket.socket) -> None:
        """Close ``raw`` (the raw socket, as its owner holds it now); threads blocked on
        it wake (and raise ``OSError(EBADF)``)."""
        if raw.fileno() == -1:
            return
        self.closing = True
        if not self._inside:
            raw.close()
            return
        # Detached first, so a woken thread already finds fileno() == -1.
        fd = raw.detach()
        if fd != -1:  # -1: a concurrent close() detached it first
            # (Nobody else closes the fd before it is in _pending.)
            try:
                waker = RawSocket(fileno=fd)
            except OSError:
                pass
            else:
                try:
                    waker.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                waker.detach()
            self._pending.append(fd)
        if not self._inside:
            self._close_pending()

    def _close_pending(self) -> None:
        try:
            fd = self._pending.pop()
        except IndexError:  # another thread took it
            return
        close_fd(fd)
