"""``serve_tcp`` / ``serve_unix`` for the sync face: one thread per connection.

The threaded twin of ``_serve_async``; the policy is the same (``_serve_policy``). Threads cannot
be cancelled, so at the end of the grace period the server shuts down and
closes the connections still open, which wakes their handlers.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import ssl as _ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Self, overload

from . import _listeners, _serve_policy as policy, _tls
from ._sync import SyncSocket, SyncSSLSocket, run
from ._waiters.poll import WAITER

Handler = Callable[[SyncSocket, Any], None]
TLSHandler = Callable[[SyncSSLSocket, Any], None]  # with ssl=: the handler gets a TLS socket


# The signals a process is sent (Ctrl-C, SIGTERM, SIGHUP, ...), as opposed to the faults a
# thread raises on itself, which cannot be blocked.
_FAULTS = {"SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGTRAP", "SIGSYS", "SIGKILL", "SIGSTOP"}
_PROCESS_SIGNALS = (
    {s for s in signal.valid_signals() if getattr(s, "name", "") not in _FAULTS}
    if hasattr(signal, "pthread_sigmask")
    else set()
)


@contextlib.contextmanager
def _process_signals_blocked() -> Iterator[None]:
    """Within the block, the calling thread blocks the process's signals, and so does
    every thread it starts (threads inherit the mask), for good.

    Python runs signal handlers in the main thread only, and a signal the kernel hands
    to another thread interrupts no call of the main thread: a main thread blocked in
    ``serve_forever()`` would sleep through Ctrl-C. The server's threads block them, so
    the kernel hands them to a thread that takes them.
    """
    if not _PROCESS_SIGNALS:  # pragma: no cover - Windows
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _PROCESS_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# How long a wait of the caller's thread (serve_forever(), wait_closed()) sleeps at most
# before it looks again: see _wait_for().
_SLICE = 0.5


def _wait_for(
    cond: threading.Condition, predicate: Callable[[], bool], timeout: float | None = None
) -> bool:
    """``cond.wait_for(predicate, timeout)`` (``cond`` held), in slices of ``_SLICE``
    seconds: a signal that interrupted no wait (the kernel handed it to another thread,
    or it landed just before the wait began) has its Python handler run within a slice,
    not when the wait ends for another reason. (The stdlib's ``socketserver`` polls
    every 0.5 s for its shutdown request, likewise.)"""
    end = None if timeout is None else time.monotonic() + timeout
    while not predicate():
        left = _SLICE if end is None else min(_SLICE, end - time.monotonic())
        if left <= 0:
            return False
        cond.wait(left)
    return True


def _join(thread: threading.Thread) -> None:
    """``thread.join()``, in slices (see :func:`_wait_for`)."""
    while thread.is_alive():
        thread.join(_SLICE)


class ThreadedServer:
    """A running server: listening ``sockets``, one handler thread per connection.

    ``close()`` stops accepting; ``wait_closed()`` then lets handlers finish
    for up to ``grace_period`` seconds (``None``: as long as they take) and
    shuts down and closes the connections left, so their handlers end.
    ``with server:`` does both on exit.
    """

    def __init__(
        self,
        listeners: Sequence[SyncSocket],
        handler: Handler,
        max_connections: int | None,
        grace_period: float | None,
        on_close: Callable[[SyncSocket], None] | None = None,
        tls: tuple[_ssl.SSLContext, float | None] | None = None,
    ) -> None:
        self.sockets: tuple[SyncSocket, ...] = tuple(listeners)
        self._tls = tls  # (context, handshake timeout): TLS before the handler
        self._handler = handler
        self._max = max_connections
        self._grace = grace_period
        self._on_close = on_close
        self._lock = threading.Condition()
        self._conns: dict[threading.Thread, tuple[SyncSocket, Any]] = {}
        self._shut: set[SyncSocket] = set()  # connections the server closed under a handler
        self._closed = False
        for sock in self.sockets:
            sock.settimeout(None)
        self._accepters = [
            threading.Thread(target=self._accept_loop, args=(s,), daemon=True, name=f"accept {s}")
            for s in self.sockets
        ]
        with _process_signals_blocked():  # and so in the handlers' threads they start
            for thread in self._accepters:
                thread.start()

    @property
    def active_connections(self) -> int:
        """How many handlers are running."""
        with self._lock:
            return len(self._conns)

    def _wait_room(self) -> bool:
        """Wait (holding the lock) until a handler may start; ``False`` once closed."""
        while self._max is not None and len(self._conns) >= self._max and not self._closed:
            self._lock.wait()
        return not self._closed

    def _accept_loop(self, listener: SyncSocket) -> None:
        accepts = policy.AcceptPolicy(listener)
        while True:
            with self._lock:  # full: no accept() until a handler ends
                if not self._wait_room():
                    return
            try:
                conn, address = listener.accept()
                if not self._start(conn, address):
                    return
            except Exception as exc:
                if self._closed:  # woken by close()
                    return
                delay = accepts.failed(exc)
                if delay is None:
                    return
                with self._lock:  # close() ends the back-off at once
                    self._lock.wait_for(lambda: self._closed, delay)
                continue
            accepts.accepted()

    def _start(self, conn: SyncSocket, address: Any) -> bool:
        """Start a thread running the handler on ``conn``; ``False`` (``conn`` closed) if
        the server closed first. Closes ``conn`` and raises if the thread cannot start."""
        thread = threading.Thread(
            target=self._run, args=(conn, address), daemon=True, name=f"handler {address!r}"
        )
        with self._lock:
            if not self._wait_room():  # another listener may have taken the last slot
                conn.close()
                return False
            self._conns[thread] = (conn, address)
        try:
            thread.start()
        except BaseException:
            with self._lock:
                del self._conns[thread]
                self._lock.notify_all()
            conn.close()
            raise
        return True

    def _run(self, conn: SyncSocket, address: Any) -> None:
        if self._tls is not None:
            tls = self._tls_handshake(conn, address)
            if tls is None:
                with self._lock:
                    self._conns.pop(threading.current_thread(), None)
                    self._lock.notify_all()
                return
            conn = tls
        try:
            with conn:
                self._handler(conn, address)
        except Exception:
            if conn not in self._shut:
                policy.log_handler_error(address)
        finally:
            with self._lock:
                self._conns.pop(threading.current_thread(), None)
                self._shut.discard(conn)
                self._lock.notify_all()

    def _tls_handshake(self, conn: SyncSocket, address: Any) -> SyncSSLSocket | None:
        """The TLS handshake before the handler: the TLS socket, or None (logged, closed)."""
        assert self._tls is not None
        context, timeout = self._tls
        until = _tls.handshake_deadline(WAITER, None, timeout)
        try:
            tls: SyncSSLSocket = run(
                _tls.handshake_new(
                    WAITER, SyncSSLSocket._from_inner, conn, context, True, None, until
                )
            )
        except Exception as exc:
            _tls.log_handshake_failure(address, exc)
            return None
        with self._lock:  # the server closes the TLS socket from now on
            thread = threading.current_thread()
            if thread in self._conns:
                self._conns[thread] = (tls, address)
        return tls

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
        """Wait for ``close()``, then for the handlers: up to the grace period, then shut
        down and close their connections (a blocked handler wakes to end of file or
        ``OSError``, not logged). A handler still running ``UNWIND`` (1) second later is
        logged and left running. With ``grace_period=None`` this waits as long as they take.
        An interruption (``KeyboardInterrupt``) ends the grace period at once: the
        connections are shut down and closed, then the exception propagates. The
        grace period is given once: a later call shuts the connections down at once.
        """
        me = threading.current_thread()  # a handler may call this
        with self._lock:
            _wait_for(self._lock, lambda: self._closed)
        for thread in self._accepters:
            _join(thread)
        try:
            with self._lock:
                _wait_for(self._lock, lambda: self._conns.keys() <= {me}, self._grace)
        finally:
            self._grace = 0  # given once: a later wait_closed() stops the handlers at once
            left = self._stop_handlers(me)
        with self._lock:
            _wait_for(self._lock, lambda: self._conns.keys().isdisjoint(left), policy.UNWIND)
            stuck = [address for t, (_, address) in self._conns.items() if t in left]
        for address in stuck:
            policy.log_abandoned(address)

    def close_clients(self) -> None:
        """Shut down and close every connection being served now, but the caller's own:
        a handler blocked on its socket wakes to end of file or ``OSError`` (not logged).
        Accepting goes on; ``close()`` stops it. Ends ``wait_closed()``'s grace period
        as soon as the handlers return."""
        self._stop_handlers(threading.current_thread())

    def _stop_handlers(self, me: threading.Thread) -> set[threading.Thread]:
        """Shut down and close every connection still served (but ``me``'s); their threads."""
        with self._lock:
            left = {t: c for t, c in self._conns.items() if t is not me}
            self._shut.update(conn for conn, _ in left.values())
        for conn, _ in left.values():
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes a reader even through makefile()
            except OSError:
                pass
            conn.close()
        return set(left)

    def serve_forever(self) -> None:
        """Block until the server is closed (by another thread) or interrupted, then close
        it and do what ``wait_closed()`` does."""
        try:
            with self._lock:
                _wait_for(self._lock, lambda: self._closed)
        finally:
            self.close()
            self.wait_closed()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
        self.wait_closed()


@overload
def serve_tcp(
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
) -> ThreadedServer: ...


@overload
def serve_tcp(
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
) -> ThreadedServer: ...


def serve_tcp(
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
) -> ThreadedServer:
    """Serve TCP: run ``handler(sock, address)`` in a thread per connection.

    As ``asocket.serve_tcp``, on threads: ``max_connections`` caps the running
    handlers (no accept while full); handler and ``accept()`` errors are logged,
    never fatal; ``grace_period`` bounds the wait for handlers at shutdown.
    """
    policy.check_max_connections(max_connections)
    policy.check_grace_period(grace_period)
    context = _tls.check_ssl_args(ssl, None, ssl_handshake_timeout if ssl else None)
    tls = None if context is None else (context, ssl_handshake_timeout)
    listeners = run(
        _listeners.open_tcp_listeners(SyncSocket, WAITER, host, port, backlog, reuse_port)
    )
    return ThreadedServer(listeners, handler, max_connections, grace_period, tls=tls)


def serve_unix(
    handler: Handler,
    path: str,
    *,
    backlog: int | None = None,
    max_connections: int | None = None,
    grace_period: float | None = 5.0,
) -> ThreadedServer:
    """``serve_tcp`` on a Unix stream socket at ``path`` (removed again on close)."""
    policy.check_max_connections(max_connections)
    policy.check_grace_period(grace_period)
    listener = run(_listeners.open_unix_listener(SyncSocket, WAITER, path, backlog))
    return ThreadedServer(
        [listener], handler, max_connections, grace_period, _listeners.remove_unix_path
    )
