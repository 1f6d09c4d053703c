"""``serve_tcp`` / ``serve_unix`` for the async face: one task per connection.

The policy (which listeners, which accept errors to skip, the back-off) is in
``_server`` and shared with the threaded twin in ``_serve_threads``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Self

from . import _server
from ._async import AsyncSocket, _running_waiter

log = logging.getLogger("asocket")

Handler = Callable[[AsyncSocket, Any], Awaitable[None]]


class Server:
    """A running server: listening ``sockets``, one handler task per connection.

    ``close()`` stops accepting; ``await wait_closed()`` then lets running
    handlers finish for up to ``grace_period`` seconds and cancels the rest.
    ``async with server:`` does both on exit.
    """

    def __init__(
        self,
        listeners: Sequence[AsyncSocket],
        handler: Handler,
        max_connections: int | None,
        grace_period: float | None,
        on_close: Callable[[AsyncSocket], None] | None = None,
    ) -> None:
        self.sockets: tuple[AsyncSocket, ...] = tuple(listeners)
        self._handler = handler
        self._grace = grace_period
        self._on_close = on_close
        self._slots = asyncio.Semaphore(max_connections) if max_connections else None
        self._handlers: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()
        for sock in self.sockets:
            sock.settimeout(None)
        self._accepters = [asyncio.create_task(self._accept_loop(s)) for s in self.sockets]

    @property
    def active_connections(self) -> int:
        """How many handlers are running."""
        return len(self._handlers)

    async def _accept_loop(self, listener: AsyncSocket) -> None:
        backoff = 0.0
        while True:
            if self._slots is not None:
                await self._slots.acquire()  # full: stop accepting until a handler ends
            try:
                conn, address = await listener.accept()
            except OSError as exc:
                if self._slots is not None:
                    self._slots.release()
                delay = _server.accept_failed(exc, backoff, listener)
                if delay is None:
                    return
                backoff = delay
                await asyncio.sleep(delay)
                continue
            backoff = 0.0
            task = asyncio.create_task(self._run(conn, address))
            self._handlers.add(task)
            task.add_done_callback(self._handler_done)

    def _handler_done(self, task: asyncio.Task[None]) -> None:
        self._handlers.discard(task)
        if self._slots is not None:
            self._slots.release()

    async def _run(self, conn: AsyncSocket, address: Any) -> None:
        with conn:
            try:
                await self._handler(conn, address)
            except Exception:
                log.exception("handler for %r raised", address)

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

    async def wait_closed(self) -> None:
        """Wait for ``close()``, then for the handlers: up to the grace period, then cancel."""
        await self._closed.wait()
        await asyncio.gather(*self._accepters, return_exceptions=True)
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=self._grace)
        for task in list(self._handlers):
            task.cancel()
        while self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)

    async def serve_forever(self) -> None:
        """Wait until the server is closed (from another task), then for its handlers."""
        await self.wait_closed()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()


async def serve_tcp(
    handler: Handler,
    host: str | None = None,
    port: int = 0,
    *,
    backlog: int | None = None,
    max_connections: int | None = None,
    reuse_port: bool = False,
    grace_period: float | None = 5.0,
) -> Server:
    """Serve TCP: run ``await handler(sock, address)`` in a task per connection.

    ``host=None`` listens on every interface (dual-stack where possible); a
    host name listens on each address it resolves to. At most
    ``max_connections`` handlers run at once: while full, no connection is
    accepted. A handler's exception is logged with its peer's address; the
    connection is closed when the handler returns. Accept errors that concern
    one connection are skipped; running out of descriptors or memory is logged
    and retried after a back-off, the listener staying open.
    """
    _server.check_max_connections(max_connections)
    listeners = await _server.open_tcp_listeners(
        AsyncSocket, _running_waiter(), host, port, backlog, reuse_port
    )
    return Server(listeners, handler, max_connections, grace_period)


async def serve_unix(
    handler: Handler,
    path: str,
    *,
    backlog: int | None = None,
    max_connections: int | None = None,
    grace_period: float | None = 5.0,
) -> Server:
    """``serve_tcp`` on a Unix stream socket at ``path`` (removed again on close)."""
    if not hasattr(socket, "AF_UNIX"):  # pragma: no cover - Windows
        raise OSError("Unix sockets are not supported on this platform")
    _server.check_max_connections(max_connections)
    listener = await _server.open_unix_listener(AsyncSocket, path, backlog)
    return Server([listener], handler, max_connections, grace_period, _server.remove_unix_path)
