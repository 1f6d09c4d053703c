"""``serve_tcp`` / ``serve_unix`` for the sync face: one thread per connection.

The twin of ``_serve``; the policy is the same (``_server``). Threads cannot
be cancelled, so at the end of the grace period the server closes the
connections still open, which wakes their handlers with ``OSError(EBADF)``.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Self

from . import _server
from ._poll import WAITER
from ._sync import SyncSocket, run

log = logging.getLogger("asocket")

Handler = Callable[[SyncSocket, Any], None]


class ThreadedServer:
    """A running server: listening ``sockets``, one handler thread per connection.

    ``close()`` stops accepting; ``wait_closed()`` then lets handlers finish
    for up to ``grace_period`` seconds and closes the connections left, so
    their handlers end. ``with server:`` does both on exit.
    """

    def __init__(
        self,
        listeners: Sequence[SyncSocket],
        handler: Handler,
        max_connections: int | None,
        grace_period: float | None,
        on_close: Callable[[SyncSocket], None] | None = None,
    ) -> None:
        self.sockets: tuple[SyncSocket, ...] = tuple(listeners)
        self._handler = handler
        self._max = max_connections
        self._grace = grace_period
        self._on_close = on_close
        self._lock = threading.Condition()
        self._conns: dict[threading.Thread, SyncSocket] = {}
        self._closed = False
        for sock in self.sockets:
            sock.settimeout(None)
        self._accepters = [
            threading.Thread(target=self._accept_loop, args=(s,), daemon=True, name=f"accept {s}")
            for s in self.sockets
        ]
        for thread in self._accepters:
            thread.start()

    @property
    def active_connections(self) -> int:
        """How many handlers are running."""
        with self._lock:
            return len(self._conns)

    def _accept_loop(self, listener: SyncSocket) -> None:
        backoff = 0.0
        while True:
            with self._lock:  # full: stop accepting until a handler ends
                while self._max is not None and len(self._conns) >= self._max and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
            try:
                conn, address = listener.accept()
            except OSError as exc:
                delay = _server.accept_failed(exc, backoff, listener)
                if delay is None or self._closed:
                    return
                backoff = delay
                time.sleep(delay)
                continue
            backoff = 0.0
            thread = threading.Thread(target=self._run, args=(conn, address), daemon=True)
            with self._lock:
                if self._closed:
                    conn.close()
                    return
                self._conns[thread] = conn
            thread.start()

    def _run(self, conn: SyncSocket, address: Any) -> None:
        try:
            with conn:
                self._handler(conn, address)
        except Exception:
            if not (self._closed and conn.fileno() == -1):  # not our own shutdown
                log.exception("handler for %r raised", address)
        finally:
            with self._lock:
                self._conns.pop(threading.current_thread(), None)
                self._lock.notify_all()

    def close(self) -> None:
        """Stop accepting and close the listening sockets; handlers keep running."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._lock.notify_all()
        for sock in self.sockets:
            if self._on_close is not None:
                self._on_close(sock)
            sock.close()  # wakes the accepting threads with EBADF

    def wait_closed(self) -> None:
        """Wait for the handlers: up to the grace period, then close their connections."""
        for thread in self._accepters:
            thread.join()
        deadline = None if self._grace is None else time.monotonic() + self._grace
        with self._lock:
            while self._conns:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._lock.wait(left)
            threads = list(self._conns.items())
        for thread, conn in threads:
            conn.close()
            thread.join()

    def serve_forever(self) -> None:
        """Block until the server is closed (from another thread), then wait for it."""
        for thread in self._accepters:
            thread.join()
        self.wait_closed()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
        self.wait_closed()


def serve_tcp(
    handler: Handler,
    host: str | None = None,
    port: int = 0,
    *,
    backlog: int | None = None,
    max_connections: int | None = None,
    reuse_port: bool = False,
    grace_period: float | None = 5.0,
) -> ThreadedServer:
    """Serve TCP: run ``handler(sock, address)`` in a thread per connection.

    As ``asocket.serve_tcp``, on threads: ``max_connections`` caps the running
    handlers (no accept while full); errors are logged, never fatal.
    """
    _server.check_max_connections(max_connections)
    listeners = run(_server.open_tcp_listeners(SyncSocket, WAITER, host, port, backlog, reuse_port))
    return ThreadedServer(listeners, handler, max_connections, grace_period)


def serve_unix(
    handler: Handler,
    path: str,
    *,
    backlog: int | None = None,
    max_connections: int | None = None,
    grace_period: float | None = 5.0,
) -> ThreadedServer:
    """``serve_tcp`` on a Unix stream socket at ``path`` (removed again on close)."""
    if not hasattr(socket, "AF_UNIX"):  # pragma: no cover - Windows
        raise OSError("Unix sockets are not supported on this platform")
    _server.check_max_connections(max_connections)
    listener = run(_server.open_unix_listener(SyncSocket, path, backlog))
    return ThreadedServer(
        [listener], handler, max_connections, grace_period, _server.remove_unix_path
    )
