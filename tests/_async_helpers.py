"""Helpers the async-face tests share, on every backend: loopback pairs, full buffers,
bounds, and tasks whose outcome a test reads.

Written with anyio's primitives, so one helper serves both an ``@pytest.mark.anyio`` test
(asyncio, uvloop, noreadiness and trio) and an ``@pytest.mark.asyncio`` one (anyio runs on
any asyncio loop): there is no asyncio twin of any of them.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

import anyio
import anyio.abc

import asocket

WAIT = 5.0  # bound on every wait that should succeed
CHUNK = 65536

T = TypeVar("T")


async def bounded(awaitable: Awaitable[T], timeout: float = WAIT) -> T:
    """Await ``awaitable``; fail the test with ``AssertionError`` if it takes more than
    ``timeout`` seconds (the backend-neutral ``asyncio.wait_for(awaitable, WAIT)``).

    An ``AssertionError``, not ``TimeoutError``: a test can then tell the bound from the
    socket's own ``TimeoutError('timed out')``.
    """
    with anyio.move_on_after(timeout):
        return await awaitable
    raise AssertionError(f"not done within {timeout} s")


# -- a TCP socket and its stdlib peer, for the read hint's tests ------------------------


async def peer_pair() -> tuple[asocket.socket, socket.socket]:
    """A connected asocket TCP socket and its stdlib peer (blocking, in this thread)."""
    lst = socket.create_server(("127.0.0.1", 0))
    with lst:
        sock = await asocket.create_connection(lst.getsockname(), timeout=WAIT)
        peer, _ = lst.accept()
    sock.settimeout(None)
    return sock, peer


async def read_sent_later(read: Callable[[], Awaitable[T]], send: Callable[[], Any]) -> T:
    """``await read()`` while another task calls ``send()`` a moment later (so the read
    has to wait for its data)."""

    async def later() -> None:
        await anyio.sleep(0.02)
        send()

    async with anyio.create_task_group() as tg:
        tg.start_soon(later)
        with anyio.fail_after(WAIT):
            return await read()
    raise AssertionError("unreachable")  # pragma: no cover - (for type checkers)


async def slow_reads(sock: asocket.socket, peer: socket.socket) -> None:
    """Two short reads that each had to wait: the socket's read hint is then set."""
    for _ in range(2):
        got = await read_sent_later(lambda: sock.recv(1024), lambda: peer.sendall(b"ping"))
        assert got == b"ping"
    assert sock._waited


def reset(peer: socket.socket) -> None:
    """Close ``peer`` with a reset (``SO_LINGER`` 0) instead of a FIN."""
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()


class Task(Generic[T]):
    """One awaitable run by ``Tasks``: its outcome, read as an ``asyncio.Task``'s."""

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        self.finished = anyio.Event()
        self._result: T | None = None
        self._exception: Exception | None = None

    async def _run(self, awaitable: Awaitable[T]) -> None:
        try:
            with self.scope:
                try:
                    self._result = await awaitable
                except Exception as exc:
                    self._exception = exc
        finally:
            self.finished.set()

    def done(self) -> bool:
        """Whether the awaitable has ended (returned, raised or been cancelled)."""
        return self.finished.is_set()

    def cancel(self) -> None:
        """Cancel the awaitable (its own cancel scope: nothing else is cancelled)."""
        self.scope.cancel()

    def cancelled(self) -> bool:
        """Whether it ended by its cancellation (not by returning in spite of it)."""
        return self.done() and self.scope.cancelled_caught

    def exception(self) -> Exception | None:
        """The exception it raised, or None. Raises AssertionError if it has not ended."""
        assert self.done(), "the task has not ended"
        return self._exception

    def result(self) -> T:
        """What it returned; re-raises what it raised. AssertionError if it has not ended
        or was cancelled."""
        assert self.done(), "the task has not ended"
        assert not self.cancelled(), "the task was cancelled"
        if self._exception is not None:
            raise self._exception
        return cast(T, self._result)

    async def wait(self, timeout: float = WAIT) -> None:
        """Wait until it ends, at most ``timeout`` seconds (else AssertionError)."""
        await bounded(self.finished.wait(), timeout)

    async def join(self, timeout: float = WAIT) -> T:
        """Wait until it ends (bounded) and return its ``result()``."""
        await self.wait(timeout)
        return self.result()


class Tasks:
    """A task group for one test (``async with Tasks() as tasks:``) that starts awaitables
    as tasks and lets the test read their outcome; leaving the block cancels whatever is
    still running, so a failing test leaves nothing pending."""

    def __init__(self) -> None:
        self._group: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> Tasks:
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._group is not None
        with anyio.CancelScope(shield=True):
            await anyio.sleep(0)  # a task spawned just now starts, so its awaitable is awaited
        self._group.cancel_scope.cancel()
        return await self._group.__aexit__(exc_type, exc, tb)

    def spawn(self, awaitable: Awaitable[T]) -> Task[T]:
        """Start ``awaitable`` as a task, now; it runs from the next checkpoint."""
        assert self._group is not None, "use Tasks in an async with block"
        task: Task[T] = Task()
        self._group.start_soon(task._run, awaitable)
        return task

    async def start(self, awaitable: Awaitable[T], settle: float | None = None) -> Task[T]:
        """Start ``awaitable`` as a task and let it reach its wait: until every task is
        blocked (``settle=None``) or for ``settle`` seconds. It must still be waiting."""
        task = self.spawn(awaitable)
        if settle is None:
            with anyio.fail_after(WAIT):
                await anyio.wait_all_tasks_blocked()
        else:
            await anyio.sleep(settle)
        assert not task.done(), task.exception() if task.done() else task
        return task


async def listener(family: int = asocket.AF_INET, host: str | None = None) -> asocket.socket:
    """A listening TCP socket on loopback (``::1`` for AF_INET6 unless ``host`` is given)."""
    if host is None:
        host = "::1" if family == asocket.AF_INET6 else "127.0.0.1"
    lst = asocket.socket(family, asocket.SOCK_STREAM)
    try:
        await lst.bind((host, 0))
        lst.listen()
    except BaseException:
        lst.close()
        raise
    return lst


async def tcp_pair(
    family: int = asocket.AF_INET, host: str | None = None
) -> tuple[asocket.socket, asocket.socket]:
    """A connected (client, server) TCP pair on loopback."""
    with await listener(family, host) as lst:
        cli = asocket.socket(family, asocket.SOCK_STREAM)
        try:
            await bounded(cli.connect(lst.getsockname()))
            srv, _ = await bounded(lst.accept())
        except BaseException:
            cli.close()
            raise
    return cli, srv


def small_buffers(a: asocket.socket, b: asocket.socket) -> None:
    """Shrink ``a``'s send buffer and ``b``'s receive buffer, so a few KiB fill them."""
    a.setsockopt(asocket.SOL_SOCKET, asocket.SO_SNDBUF, 4096)
    b.setsockopt(asocket.SOL_SOCKET, asocket.SO_RCVBUF, 4096)


async def fill(sock: asocket.socket) -> int:
    """Send until not even one more byte fits; return the count. Restores the mode."""
    saved = sock.gettimeout()
    sock.settimeout(0.0)
    total = 0
    try:
        for size in (CHUNK, 4096, 256, 1):
            for _ in range(100_000):
                try:
                    total += await sock.send(b"f" * size)
                except BlockingIOError:
                    break
    finally:
        sock.settimeout(saved)
    return total


async def drain(sock: asocket.socket, idle: float = 0.2) -> int:
    """Read until nothing arrives for ``idle`` seconds (or EOF); return the count."""
    saved = sock.gettimeout()
    sock.settimeout(idle)
    total = 0
    try:
        while True:
            try:
                data = await bounded(sock.recv(CHUNK))
            except TimeoutError:
                return total
            if not data:
                return total
            total += len(data)
    finally:
        sock.settimeout(saved)


def pending_connect_target() -> tuple[socket.socket, list[socket.socket]]:
    """A loopback listener whose accept queue is full: a further connect stays pending."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(0)
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(lst.getsockname())
        fillers.append(s)
    time.sleep(0.05)
    return lst, fillers


def close_all(*socks: Any) -> None:
    """Close every socket given."""
    for s in socks:
        s.close()


async def wait_all(*tasks: Task[Any], timeout: float = WAIT) -> list[Task[Any]]:
    """Wait until every task has ended, at most ``timeout`` seconds; return those still
    running (``asyncio.wait(tasks, timeout=...)``'s ``pending``)."""
    with anyio.move_on_after(timeout):
        for task in tasks:
            await task.finished.wait()
    return [task for task in tasks if not task.done()]


async def wait_first(*tasks: Task[Any], timeout: float = WAIT) -> list[Task[Any]]:
    """Wait until one task has ended, at most ``timeout`` seconds; return those that have
    (``asyncio.wait(..., return_when=FIRST_COMPLETED)``'s ``done``)."""
    with anyio.move_on_after(timeout):
        async with anyio.create_task_group() as group:

            async def watch(task: Task[Any]) -> None:
                await task.finished.wait()
                group.cancel_scope.cancel()

            for task in tasks:
                group.start_soon(watch, task)
    return [task for task in tasks if task.done()]


async def cancelled(task: Task[Any]) -> None:
    """Cancel ``task`` and check it ends cancelled, within a bound."""
    task.cancel()
    await task.wait()
    assert task.cancelled(), task.exception() or task.result()
