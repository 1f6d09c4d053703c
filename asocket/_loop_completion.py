"""The completion waiter: loops without ``add_reader`` (proactor-style loops).

Such a loop can only perform whole operations, so where an operation has a
``loop.sock_*`` twin (and its arguments fit the twin) the waiter performs it:

=================  ==============================  ==========================
operation          twin                            when
=================  ==============================  ==========================
``accept``         ``sock_accept``                 always
``connect``        ``sock_connect``                always
``recv``           ``sock_recv``                   ``flags == 0``
``recv_into``      ``sock_recv_into``              ``flags == 0``
``recvfrom``       ``sock_recvfrom``               ``flags == 0``
``recvfrom_into``  ``sock_recvfrom_into``          ``flags == 0``
``sendall``        ``sock_sendall``                ``flags == 0``
``sendto``         ``sock_sendto``                 ``flags == 0``
=================  ==============================  ==========================

Every other wait (``send``, ``recvmsg``, ``recvmsg_into``, ``sendmsg``,
``sendfile``, calls with flags) polls: the syscall is retried after a sleep
that grows from 0.5 ms to 20 ms, so these keep their exact semantics
(partial counts, nothing consumed on cancel) at the cost of latency.

A twin runs in a task; close() cancels it, wakes the caller with
``OSError(EBADF)`` and closes the descriptor only once the task is done, so
the loop never touches a reused fd. As with asyncio's own ``sock_*``, a twin
cancelled just as it completes may lose what it received.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ._loop import LoopWaiter
from ._timeouts import timed_out
from ._waiter import READ, WRITE, Op, ebadf

_POLL_MIN = 0.0005
_POLL_MAX = 0.02
_POLL_GAP = 0.005  # a retry between two polls of one episode takes microseconds


def _view(buffer: Any, nbytes: int) -> Any:
    return memoryview(buffer).cast("B")[:nbytes] if nbytes else buffer


async def _accept(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> tuple[int, Any]:
    conn, address = await loop.sock_accept(sock)
    return conn.detach(), address


Twin = Callable[[asyncio.AbstractEventLoop, socket.socket, tuple[Any, ...]], Awaitable[Any]]

# The sock_* awaitable performing each op, given the op's own arguments. None of
# them takes flags: a call with flags has no twin (Op.flags finds them).
_TWINS: dict[str, Twin] = {
    "accept": lambda loop, sock, args: _accept(loop, sock),
    "connect": lambda loop, sock, args: loop.sock_connect(sock, args[0]),
    "recv": lambda loop, sock, args: loop.sock_recv(sock, args[0]),
    "recv_into": lambda loop, sock, args: loop.sock_recv_into(sock, _view(args[0], args[1])),
    "recvfrom": lambda loop, sock, args: loop.sock_recvfrom(sock, args[0]),
    # asyncio takes len(buffer) in items: hand it bytes.
    "recvfrom_into": lambda loop, sock, args: loop.sock_recvfrom_into(
        sock, memoryview(args[0]).cast("B"), args[1]
    ),
    "sendall": lambda loop, sock, args: loop.sock_sendall(sock, args[0]),
    "sendto": lambda loop, sock, args: loop.sock_sendto(sock, args[0], args[-1]),
}


class CompletionWaiter(LoopWaiter):
    """Waits on a loop without ``add_reader``; one instance per loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self._tasks: dict[int, set[asyncio.Task[Any]]] = {}
        self._polls: dict[int, set[asyncio.Future[None]]] = {}
        self._backoff: dict[tuple[int, int], tuple[float, float]] = {}
        self._forgotten: set[asyncio.Task[Any]] = set()
        self._locks: dict[tuple[int, int], asyncio.Lock] = {}

    def has_twin(self, op: Op, args: tuple[Any, ...]) -> bool:
        return op.name in _TWINS and not op.flags(args)

    async def complete(
        self, op: Op, sock: socket.socket, args: tuple[Any, ...], deadline: float | None
    ) -> Any:
        """Perform ``op`` with its twin, under ``deadline``."""
        fd = sock.fileno()
        delay = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            async with asyncio.timeout(delay):
                # One twin per fd and direction at a time: a selector-based sock_*
                # replaces an earlier one's callback on the fd, which would never wake.
                lock = self._locks.setdefault((fd, op.event), asyncio.Lock())
                async with lock:
                    if sock.fileno() == -1:  # closed while this call queued
                        raise ebadf()
                    return await self._run_twin(fd, op, sock, args)
        except TimeoutError:
            raise timed_out() from None

    async def _run_twin(self, fd: int, op: Op, sock: socket.socket, args: tuple[Any, ...]) -> Any:
        task = asyncio.ensure_future(_TWINS[op.name](self.loop, sock, args), loop=self.loop)
        tasks = self._tasks.setdefault(fd, set())
        tasks.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            if task in self._forgotten:  # close() cancelled it
                self._forgotten.discard(task)
                raise ebadf() from None
            # Accepted just as we were cancelled: close it rather than leak it.
            if (
                op.name == "accept"
                and task.done()
                and not task.cancelled()
                and not task.exception()
            ):
                socket.close(task.result()[0])
            raise
        finally:
            tasks.discard(task)
            if not tasks and self._tasks.get(fd) is tasks:
                del self._tasks[fd]

    async def wait(self, fd: int, event: int, deadline: float | None) -> None:
        """Sleep a short, growing while (a poll); the caller retries its syscall."""
        now = time.monotonic()
        if deadline is not None and deadline <= now:
            raise timed_out()
        key = (fd, event)
        ended, delay = self._backoff.get(key, (0.0, 0.0))
        # A wait that starts right after the last one ended continues one episode: grow.
        delay = min(delay * 2, _POLL_MAX) if now - ended < _POLL_GAP else _POLL_MIN
        sleep = delay if deadline is None else min(delay, deadline - now)
        fut: asyncio.Future[None] = self.loop.create_future()
        handle = self.loop.call_later(sleep, _wake, fut)
        polls = self._polls.setdefault(fd, set())
        polls.add(fut)
        try:
            await fut
        finally:
            self._backoff[key] = (time.monotonic(), delay)
            handle.cancel()
            polls.discard(fut)
            if not polls and self._polls.get(fd) is polls:
                del self._polls[fd]

    def forget(self, fd: int, close: Callable[[], None] | None) -> None:
        """Wake everything waiting on ``fd`` with ``OSError(EBADF)``; close once idle."""
        for event in (READ, WRITE):
            self._backoff.pop((fd, event), None)
            self._locks.pop((fd, event), None)
        for fut in self._polls.pop(fd, ()):
            if not fut.done():
                fut.set_exception(ebadf())
        pending = [t for t in self._tasks.pop(fd, ()) if not t.done()]
        if not pending or close is None:
            for task in pending:
                self._cancel(task)
            if close is not None:
                close()
            return
        left = [len(pending)]

        def done(task: asyncio.Task[Any]) -> None:
            left[0] -= 1
            if left[0] == 0:
                close()

        for task in pending:
            task.add_done_callback(done)
            self._cancel(task)

    def _cancel(self, task: asyncio.Task[Any]) -> None:
        self._forgotten.add(task)
        task.cancel()


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
