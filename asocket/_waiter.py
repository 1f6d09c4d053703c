"""The seam between the semantics and the waiting: the Waiter protocol and the op table.

A waiter answers one question: "wait until this fd is readable or writable, or
the deadline passes". The core (``_core``) owns every rule about modes,
deadlines, retries and errors; a waiter owns only how to wait. Three exist:

* ``_loop_readiness.ReadinessWaiter``: loops with ``add_reader`` (asyncio's
  selector loop, uvloop).
* ``_loop_completion.CompletionWaiter``: loops without ``add_reader``
  (proactor-style); it may perform a whole operation with the loop's
  ``sock_*`` twin instead (:meth:`Waiter.has_twin`, :meth:`Waiter.complete`).
* ``_poll.PollWaiter``: the sync face; blocks in ``poll()`` and never suspends.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple, NoReturn, Protocol

READ: Final = 0
WRITE: Final = 1


class Op(NamedTuple):
    """One socket operation: its name, the readiness it waits for, and where its
    ``flags`` argument stands among the syscall's arguments (None: it has none)."""

    name: str
    event: int
    flags_at: int | None = None

    def flags(self, args: tuple[Any, ...]) -> int:
        """The ``flags`` value in ``args`` (0 where none was given)."""
        at = self.flags_at
        if at is None or len(args) <= at or (self.name == "sendto" and len(args) == 2):
            return 0
        flags: int = args[at]
        return flags


ACCEPT: Final = Op("accept", READ)
RECV: Final = Op("recv", READ, 1)
RECV_INTO: Final = Op("recv_into", READ, 2)
RECVFROM: Final = Op("recvfrom", READ, 1)
RECVFROM_INTO: Final = Op("recvfrom_into", READ, 2)
RECVMSG: Final = Op("recvmsg", READ, 2)
RECVMSG_INTO: Final = Op("recvmsg_into", READ, 2)
SEND: Final = Op("send", WRITE, 1)
SENDALL: Final = Op("sendall", WRITE, 1)
SENDTO: Final = Op("sendto", WRITE, 1)
SENDMSG: Final = Op("sendmsg", WRITE, 2)
SENDFILE: Final = Op("sendfile", WRITE)
CONNECT: Final = Op("connect", WRITE)


def ebadf() -> OSError:
    """``OSError(EBADF)``: what a call on a closed socket raises, and what a
    waiter raises in every task or thread still waiting on an fd that is closed."""
    return OSError(errno.EBADF, os.strerror(errno.EBADF))


AddrInfo = tuple[
    socket.AddressFamily,
    socket.SocketKind,
    int,
    str,
    tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes],
]


class NoTwins:
    """For waiters that only wait: no operation is performed whole."""

    def has_twin(self, op: Op, args: tuple[Any, ...]) -> bool:
        return False

    async def complete(
        self, op: Op, sock: socket.socket, args: tuple[Any, ...], deadline: float | None
    ) -> NoReturn:  # pragma: no cover - has_twin() is always False
        raise NotImplementedError


class Waiter(Protocol):
    """How one face waits. Implementations know nothing of socket semantics."""

    def clock(self) -> float:
        """Monotonic time in seconds; deadlines are on this clock."""
        ...

    async def wait(self, fd: int, event: int, deadline: float | None) -> None:
        """Return when ``fd`` may be ready for ``event`` (a false positive is allowed).

        Raises ``TimeoutError('timed out')`` once ``deadline`` passes and
        ``OSError(EBADF)`` if the fd is forgotten (closed) meanwhile.
        """
        ...

    async def wait_any(self, fds: Sequence[int], event: int, deadline: float | None) -> list[int]:
        """Return the fds of ``fds`` that may be ready for ``event`` (false positives
        allowed), once one may be; ``[]`` once ``deadline`` passes first."""
        ...

    def has_twin(self, op: Op, args: tuple[Any, ...]) -> bool:
        """True if :meth:`complete` performs ``op`` with these arguments."""
        ...

    async def complete(
        self, op: Op, sock: socket.socket, args: tuple[Any, ...], deadline: float | None
    ) -> Any:
        """Perform the whole of ``op`` (only where :meth:`has_twin` said so)."""
        ...

    def forget(self, fd: int, close: Callable[[], None] | None) -> None:
        """Drop ``fd``: wake its waiters with ``OSError(EBADF)``, unregister it,
        then call ``close`` (the OS close) once nothing of the waiter uses the fd."""
        ...

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
        """``socket.getaddrinfo`` without blocking the face's event loop (if any).

        An event loop's waiter raises ``TimeoutError('timed out')`` once ``deadline``
        passes; the sync face's cannot interrupt the C library, as the stdlib's cannot.
        """
        ...

    async def sleep(self, delay: float) -> None:
        """Sleep ``delay`` seconds."""
        ...


def getaddrinfo(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> list[AddrInfo]:
    """The stdlib's blocking ``getaddrinfo``, typed as the waiters return it."""
    return list(socket.getaddrinfo(host, port, family, type, proto, flags))
