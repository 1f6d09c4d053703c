"""``serve_tcp`` / ``serve_unix`` for the async face: one task per connection.

The policy (which listeners, which accept errors to skip, the back-off) is in
``_serve_policy`` and shared with the threaded server in ``_serve_threads``.
"""

from __future__ import annotations

import asyncio
import ssl as _ssl
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Self, overload

from . import _listeners, _serve_policy as policy, _tls
from ._async import AsyncSocket, AsyncSSLSocket
from ._waiters.base import Waiter
from ._waiters.current import current
from ._waiters.loop import LoopWaiter

Handler = Callable[[AsyncSocket, Any], Awaitable[None]]
TLSHandler = Callable[
    [AsyncSSLSocket, Any], Awaitable[None]
]  # with ssl=: the handler gets a TLS socket


class Server:
    """A running server: listening ``sockets``, one handler task per connection.

    ``close()`` stops accepting; ``await wait_closed()`` then lets running
    handlers finish for up to ``grace_period`` seconds (``None``: as long as
    they take) and cancels the rest. ``async with server:`` does both on exit.
    """

    def __init__(
        self,
        listeners: Sequence[AsyncSocket],
        handler: Handler,
        max_connections: int | None,
        grace_period: float | None,
        on_close: Callable[[AsyncSocket], None] | None = None,
        tls: tuple[_ssl.SSLContext, float | None] | None = None,
    ) -> None:
        self.sockets: tuple[AsyncSocket, ...] = tuple(listeners)
        self._tls = tls  # (context, handshake timeout): TLS before the handler
        self._handler = handler
        self._max = max_connections
        self._grace = grace_period
        self._on_close = on_close
        self._handlers: dict[asyncio.Task[None], tuple[AsyncSocket, Any]] = {}
        self._shut: set[AsyncSocket] = set()  # connections the server closed under a handler
        self._room = asyncio.Event()  # set while fewer than max_connections handlers run
        self._room.set()
        self._closed = asyncio.Event()
        for sock in self.sockets:
            sock.settimeout(None)
        self._accepters = [asyncio.create_task(self._accept_loop(s)) for s in self.sockets]

    @property
    def active_connections(self) -> int:
        """How many handlers are running."""
        return len(self._handlers)

    async def _wait_room(self) -> None:
        while self._max is not None and len(self._handlers) >= self._max:
            self._room.clear()
            await self._room.wait()

    async def _accept_loop(self, listener: AsyncSocket) -> None:
        accepts = policy.AcceptPolicy(listener)
        while True:
            await self._wait_room()  # full: no accept() until a handler ends
            try:
                conn, address = await listener.accept()
                await self._start(conn, address)
            except Exception as exc:
                delay = accepts.failed(exc)
                if delay is None:
                    return
                await asyncio.sleep(delay)
                continue
            accepts.accepted()
            await asyncio.sleep(0)  # a burst of connections does not starve the handlers

    async def _start(self, conn: AsyncSocket, address: Any) -> None:
        try:
            await self._wait_room()  # another listener may have taken the last slot
            task = asyncio.create_task(self._run(conn, address))
        except BaseException:
            conn.close()
            raise
        self._handlers[task] = (conn, address)
        task.add_done_callback(self._handler_done)

    def _handler_done(self, task: asyncio.Task[None]) -> None:
        conn, _ = self._handlers.pop(task)
        conn.close()  # also when the task was cancelled before it started
        self._shut.discard(conn)
        self._room.set()

    async def _run(self, conn: AsyncSocket, address: Any) -> None:
        if self._tls is not None:
            tls = await self._tls_handshake(conn, address)
            if tls is None:
                return
            conn = tls
        try:
            await self._handler(conn, address)
        except Exception:
            if conn not in self._shut:
                policy.log_handler_error(address)

    async def _tls_handshake(self, conn: AsyncSocket, address: Any) -> AsyncSSLSocket | None:
        """The TLS handshake before the handler: the TLS socket, or None (logged, closed)."""
        assert self._tls is not None
        context, timeout = self._tls
        waiter = current()
        until = _tls.handshake_deadline(waiter, None, timeout)
        try:
            tls: AsyncSSLSocket = await _tls.handshake_new(
                waiter, AsyncSSLSocket._from_inner, conn, context, True, None, until
            )
        except Exception as exc:
            _tls.log_handshake_failure(address, exc)
            return None
        task = asyncio.current_task()
        if task in self._handlers:  # the server closes the TLS socket from now on
            self._handlers[task] = (tls, address)
        return tls

    def close(self) -> None:
        """Stop accepting and close the listening sockets; handlers keep running."""
        if self._closed.is_set():
            return
        self._closed.set()
        for task in self._accepters:
            task.cancel()
        for sock in self.sockets:
            if self._on_close is not None:
                self._on_close(sock)
            sock.close()

    def close_clients(self) -> None:
        """Cancel every running handler now, but the caller's own; each connection is
        closed as its handler ends. Accepting goes on; ``close()`` stops it. Ends
        ``wait_closed()``'s grace period as soon as the handlers end."""
        me = asyncio.current_task()
        for task in self._handlers:
            if task is not me:
                task.cancel()

    async def wait_closed(self) -> None:
        """Wait for ``close()``, then for the handlers: up to the grace period, then cancel.

        A handler still running ``UNWIND`` (1) second after its cancellation has its
        connection closed, is logged and is left running. With ``grace_period=None``
        this waits for the handlers as long as they take. Cancelling this call ends
        the grace period at once: the handlers are cancelled, then so is this call.
        The grace period is given once: a later call cancels the handlers at once.
        """
        await self._closed.wait()
        await asyncio.gather(*self._accepters, return_exceptions=True)
        me = asyncio.current_task()
        tasks = {task for task in self._handlers if task is not me}  # a handler may call this
        try:
            if tasks and self._grace != 0:
                await asyncio.wait(tasks, timeout=self._grace)
        finally:
            self._grace = 0  # given once: a later wait_closed() stops the handlers at once
            self.close_clients()  # closed: no handler started since `tasks` was taken
            tasks = {task for task in tasks if not task.done()}
        if not tasks:
            return
        await asyncio.wait(tasks, timeout=policy.UNWIND)
        for task in tasks:
            if not task.done():
                conn, address = self._handlers[task]
                self._shut.add(conn)
                conn.close()
                policy.log_abandoned(address)

    async def serve_forever(self) -> None:
        """Wait until the server is closed (by another task) or this call is cancelled,
        then close it and do what ``wait_closed()`` does."""
        try:
            await self._closed.wait()
        finally:
            self.close()
            await _to_the_end(self.wait_closed())

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()


async def _to_the_end(call: Coroutine[Any, Any, None]) -> None:
    """Await ``call`` to its end even if this task is cancelled meanwhile, once or
    again and again (as an anyio cancel scope does), then re-raise the cancellation."""
    task = asyncio.ensure_future(call)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            cancelled = exc
    if cancelled is not None:
        raise cancelled
    task.result()


@overload
async def serve_tcp(
    handler: Handler,
    host: str | None = ...,
    port: int = ...,
    *,
    backlog: int | None = ...,
    max_connections: int | None = ...,
    reuse_port: bool = ...,
    grace_period: float | None = ...,
    ssl: None = ...,
    ssl_handshake_timeout: float | None = ...,
) -> Server: ...


@overload
async def serve_tcp(
    handler: TLSHandler,
    host: str | None = ...,
    port: int = ...,
    *,
    backlog: int | None = ...,
    max_connections: int | None = ...,
    reuse_port: bool = ...,
    grace_period: float | None = ...,
    ssl: _ssl.SSLContext,
    ssl_handshake_timeout: float | None = ...,
) -> Server: ...


async def serve_tcp(
    handler: Any,
    host: str | None = None,
    port: int = 0,
    *,
    backlog: int | None = None,
    max_connections: int | None = None,
    reuse_port: bool = False,
    grace_period: float | None = 5.0,
    ssl: _ssl.SSLContext | None = None,
    ssl_handshake_timeout: float | None = 60.0,
) -> Server:
    """Serve TCP: run ``await handler(sock, address)`` in a task per connection.

    ``host=None`` (or ``""``) listens on every interface (one dual-stack socket
    where possible); a host listens on each address it resolves to. At most
    ``max_connections`` handlers run at once: while full, no connection is
    accepted. A handler's exception is logged with its peer's address; the
    connection is closed when the handler ends. ``accept()`` errors never close
    the listeners: one connection's error is skipped, any other is logged once
    per episode and retried after a back-off (0.05 s doubling to 1 s).
    ``grace_period``: how long shutdown waits for handlers before it cancels
    them (``None``: no limit).

    ``ssl``: an ``ssl.SSLContext`` (server side): each connection's TLS handshake is
    done before the handler runs, which gets an ``asocket.SSLSocket``. A handshake
    that fails or takes longer than ``ssl_handshake_timeout`` seconds (``None``: no
    limit) is logged in one line with the peer's address and never reaches the
    handler; it counts against ``max_connections`` while it runs.
    """
    policy.check_max_connections(max_connections)
    policy.check_grace_period(grace_period)
    context = _tls.check_ssl_args(ssl, None, ssl_handshake_timeout if ssl else None)
    tls = None if context is None else (context, ssl_handshake_timeout)
    waiter = current()
    listeners = await _listeners.open_tcp_listeners(
        AsyncSocket, waiter, host, port, backlog, reuse_port
    )
    return _kind(waiter)(listeners, handler, max_connections, grace_period, tls=tls)


async def serve_unix(
    handler: Handler,
    path: str,
    *,
    backlog: int | None = None,
    max_connections: int | None = None,
    grace_period: float | None = 5.0,
) -> Server:
    """``serve_tcp`` on a Unix stream socket at ``path`` (removed again on close)."""
    policy.check_max_connections(max_connections)
    policy.check_grace_period(grace_period)
    waiter = current()
    listener = await _listeners.open_unix_listener(AsyncSocket, waiter, path, backlog)
    return _kind(waiter)(
        [listener], handler, max_connections, grace_period, _listeners.remove_unix_path
    )


def _kind(waiter: Waiter) -> type[Server]:
    """The server class for the running library: asyncio's tasks, or trio's (a system
    task owns the accept loops and handlers: ``_serve_trio``)."""
    if isinstance(waiter, LoopWaiter):
        return Server
    from ._serve_trio import TrioServer

    return TrioServer
