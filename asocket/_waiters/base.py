"""The waiter protocol: the one question the engine asks of a face.

"Wait until this descriptor is readable or writable, or the deadline passes."
Everything else a waiter offers exists so that the engine and the drivers
(``create_connection``, the servers) never import an event loop: the clock
deadlines are on, waiting on several descriptors at once, forgetting a
descriptor before it is closed, running a blocking call (the resolver) off the
loop, and sleeping.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, Self, TypeVar

T = TypeVar("T")

AddrInfo = tuple[
    socket.AddressFamily,
    socket.SocketKind,
    int,
    str,
    tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes],
]


def ebadf() -> OSError:
    """``OSError(EBADF)``: what a call on a closed socket raises, and what a
    waiter raises in every task or thread still waiting on an fd that is closed."""
    return OSError(errno.EBADF, os.strerror(errno.EBADF))


class Waiter(Protocol):
    """How one face waits. Implementations know nothing of socket semantics."""

    #: True where every awaitable call must be a checkpoint (trio's rule): the engine
    #: (``io``) and the faces (the calls of several steps, through :meth:`checkpointed`)
    #: then use the three members below. False for asyncio and the sync face, which pay
    #: one attribute test for it and never call them (``NoCheckpoints``). The async
    #: face's ``RUNNING`` says True once trio was imported: ask :meth:`now`.
    checkpoints: bool

    def now(self) -> Waiter:
        """The waiter doing the waiting: itself, except for the async face's ``RUNNING``
        (the waiter of the library running at the moment)."""
        ...

    async def cancel_point(self) -> None:
        """Raise the library's cancellation if the caller is cancelled (before a syscall)."""
        ...

    async def schedule_point(self) -> None:
        """Let other tasks run, shielded from cancellation (after a syscall that did not
        wait: a cancellation must not land after data was consumed)."""
        ...

    async def checkpointed(self, call: Awaitable[T]) -> T:
        """Await ``call`` as a checkpoint: :meth:`cancel_point` before it,
        :meth:`schedule_point` after it if it completed (or failed) without suspending."""
        ...

    def clock(self) -> float:
        """Monotonic time in seconds; every deadline given to this waiter is on this clock."""
        ...

    def wait(self, fd: int, event: int, deadline: float | None) -> Awaitable[None]:
        """An awaitable that returns when ``fd`` may be ready for ``event``
        (``READ``/``WRITE``; a false positive is allowed: the caller retries its
        syscall). A coroutine, or a future the caller awaits in its own frame.

        Raises ``TimeoutError('timed out')`` once ``deadline`` passes and
        ``OSError(EBADF)`` if the fd is forgotten (closed) meanwhile.
        """
        ...

    async def wait_any(self, fds: Sequence[int], event: int, deadline: float | None) -> list[int]:
        """Return the fds of ``fds`` that may be ready for ``event`` (false positives
        allowed), once one may be; ``[]`` once ``deadline`` passes first."""
        ...

    def forget(self, fd: int, close: Callable[[], None] | None) -> None:
        """Drop ``fd``: wake its waiters with ``OSError(EBADF)``, unregister it,
        then call ``close`` (the OS close) once nothing of the waiter uses the fd."""
        ...

    def wake(self, fd: int, event: int) -> None:
        """Wake the tasks waiting on ``fd`` for ``event`` as if it were ready (each
        retries its syscall): for a change of the socket's state that its readiness
        does not report (``SocketBase._wake_senders``)."""
        ...

    async def to_thread(self, fn: Callable[..., T], *args: Any, deadline: float | None) -> T:
        """``fn(*args)`` without blocking the face's event loop (if any): the resolver.

        An event loop's waiter raises ``TimeoutError('timed out')`` once ``deadline``
        passes (the call is abandoned); the sync face's calls ``fn`` inline and cannot
        interrupt it, as the stdlib cannot interrupt its resolver.
        """
        ...

    async def sleep(self, delay: float) -> None:
        """Sleep ``delay`` seconds."""
        ...


class NoCheckpoints:
    """For the waiters of libraries without trio's checkpoint rule (asyncio, the sync
    face): ``checkpoints`` is False, so the members below are never called."""

    checkpoints = False

    def now(self) -> Self:
        return self

    async def cancel_point(self) -> None:  # pragma: no cover - never called
        pass

    async def schedule_point(self) -> None:  # pragma: no cover - never called
        pass

    async def checkpointed(self, call: Awaitable[T]) -> T:  # pragma: no cover - never called
        return await call


def getaddrinfo(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> list[AddrInfo]:
    """The stdlib's blocking ``getaddrinfo``, typed as the resolver returns it
    (looked up at call time: a test harness may replace ``socket.getaddrinfo``)."""
    return list(socket.getaddrinfo(host, port, family, type, proto, flags))
