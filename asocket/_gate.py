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
        inside = self._inside
        inside.append(None)
        # Was the fd open as the call began? close() sets ``closing`` on an open fd only.
        was_open = not self.closing
        try:
            if not was_open and self._raw.fileno() != -1:
                # close() is under way in another thread and may have looked at _inside
                # before the append above: do not start a call it would not wake.
                raise ebadf()
            result = fn(*args)
        except OSError:
            if self.closing and was_open:  # woken by close(): EPIPE, EINVAL... mean EBADF
                raise ebadf() from None
            raise
        finally:
            inside.pop()
            if self.closing and not inside:
                self._close_pending()
        if self.closing and was_open and op is not None and op.event == READ and _empty(result):
            raise ebadf()  # the "end of file" a shutdown by close() produced
        return result

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
