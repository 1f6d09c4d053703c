"""Listening sockets and the server policy both faces share.

``create_server`` as the stdlib makes it; for ``serve_tcp``/``serve_unix``,
the listeners they open and how an ``accept()`` error is handled.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import stat
import time
from collections.abc import Callable
from typing import Any, TypeVar

from . import _resolve
from ._core import SocketCore
from ._waiter import Waiter

S = TypeVar("S", bound=SocketCore)

log = logging.getLogger("asocket")


async def create_server(
    new: Callable[[int, int], S],
    address: Any,
    family: int,
    backlog: int | None,
    reuse_port: bool,
    dualstack_ipv6: bool,
) -> S:
    """Create a TCP socket bound to ``address`` and listening; see ``socket.create_server``.

    Raises ``ValueError`` for an option the platform lacks, ``OSError`` (its
    message naming the address) when the bind fails.
    """
    if reuse_port and not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("SO_REUSEPORT not supported on this platform")
    if dualstack_ipv6:
        if not socket.has_dualstack_ipv6():
            raise ValueError("dualstack_ipv6 not supported on this platform")
        if family != socket.AF_INET6:
            raise ValueError("dualstack_ipv6 requires AF_INET6 family")
    sock = new(family, socket.SOCK_STREAM)
    try:
        # SO_REUSEADDR lets a restarted server bind while old connections sit in TIME_WAIT;
        # on Windows it would let two servers share the port, so it is left off there.
        if os.name not in ("nt", "cygwin") and hasattr(socket, "SO_REUSEADDR"):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            except OSError:
                pass
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if socket.has_ipv6 and family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dualstack_ipv6 else 1)
        try:
            await sock._bind(address)
        except OSError as err:
            msg = f"{err.strerror} (while attempting to bind on address {address!r})"
            raise OSError(err.errno, msg) from None
        if backlog is None:
            sock.listen()
        else:
            sock.listen(backlog)
        return sock
    except BaseException:
        sock.close()
        raise


# -- shared by both faces' serve_tcp / serve_unix -------------------------------------

# Errors that concern one connection only (the peer gave up, a firewall said no):
# skip it and accept the next.
_PER_CONNECTION = frozenset(
    getattr(errno, name)
    for name in (
        "ECONNABORTED",
        "ECONNRESET",
        "EPROTO",
        "EPERM",
        "ENETDOWN",
        "ENETUNREACH",
        "EHOSTDOWN",
        "EHOSTUNREACH",
        "ENONET",
        "ENOPROTOOPT",
        "EOPNOTSUPP",
        "ETIMEDOUT",
    )
    if hasattr(errno, name)
)
# Out of a resource: accepting again at once would spin. Back off and retry; the
# listener stays open and the connections already accepted keep being served.
_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

BACKOFF_FIRST = 0.05  # seconds before the first retry; doubled per failure...
BACKOFF_MAX = 1.0  # ...up to this
QUIET = 1.0  # a failure episode ends once accepts have succeeded this long without a failure
PER_CONNECTION_STREAK = 100  # more per-connection errors than this in a row: back off too
PORT_RETRIES = 20  # port 0 on several addresses: sets of listeners tried before EADDRINUSE
UNWIND = 1.0  # how long a handler has to end once stopped (cancelled; sync: connection shut)


def check_max_connections(max_connections: int | None) -> None:
    """Raise ``ValueError`` unless ``max_connections`` is None or a positive int."""
    if max_connections is not None and max_connections < 1:
        raise ValueError("max_connections must be a positive integer or None")


class AcceptPolicy:
    """What one listener's accept loop does after each ``accept()``: the errors and back-off.

    ``failed(exc)`` after ``accept()`` (or starting the handler) raised ``exc``;
    ``accepted()`` once a connection is handed to its handler. A failure episode
    (failures with no ``QUIET`` seconds of successful accepts between them) is
    logged twice: its first failure (``ERROR``) and its end (``WARNING``).
    """

    def __init__(self, listener: object, clock: Callable[[], float] = time.monotonic) -> None:
        self._listener = listener
        self._clock = clock
        self._backoff = 0.0
        self._streak = 0  # per-connection errors in a row
        self._episode: float | None = None  # when the first failure of the episode came
        self._failures = 0
        self._ok_since: float | None = None  # first success since the episode's last failure

    def failed(self, exc: Exception) -> float | None:
        """``None``: stop, the listener is closed (``EBADF``); ``0.0``: accept again at once
        (one connection's error); else the seconds to sleep before accepting again:
        ``BACKOFF_FIRST``, doubled per further failure, at most ``BACKOFF_MAX``.
        """
        code = exc.errno if isinstance(exc, OSError) else None
        if code == errno.EBADF:
            return None
        if code in _PER_CONNECTION:
            self._streak += 1
            if self._streak <= PER_CONNECTION_STREAK:
                return 0.0
        now = self._clock()
        self._ok_since = None
        if self._episode is None:
            self._episode, self._failures = now, 0
            if code in _RESOURCES or isinstance(exc, MemoryError):
                kind = "out of resources"
            elif code in _PER_CONNECTION:
                kind = f"{PER_CONNECTION_STREAK} per-connection errors in a row"
            else:
                kind = "unexpected error"
            log.error(
                "accept() on %r failed (%s): %s; retrying with back-off",
                self._listener,
                kind,
                exc,
                exc_info=None if isinstance(exc, OSError) else exc,
            )
        self._failures += 1
        self._backoff = min(max(self._backoff * 2, BACKOFF_FIRST), BACKOFF_MAX)
        return self._backoff

    def accepted(self) -> None:
        """A connection went to its handler: reset the back-off; log the end of an episode."""
        self._backoff = 0.0
        self._streak = 0
        if self._episode is None:
            return
        now = self._clock()
        if self._ok_since is None:
            self._ok_since = now
        elif now - self._ok_since >= QUIET:
            log.warning(
                "accept() on %r works again, after %d failed over %.1f s",
                self._listener,
                self._failures,
                self._ok_since - self._episode,
            )
            self._episode = None


def log_handler_error(address: Any) -> None:
    """Log the exception being handled, raised by the handler for peer ``address``."""
    log.exception("handler for %r raised", address)


def log_abandoned(address: Any) -> None:
    """Log that the handler for ``address`` outlived shutdown and is left running."""
    log.warning(
        "handler for %r did not end within %.1f s of being stopped; left running", address, UNWIND
    )


async def open_tcp_listeners(
    new: Callable[[int, int], S],
    waiter: Waiter,
    host: str | None,
    port: int,
    backlog: int | None,
    reuse_port: bool,
) -> list[S]:
    """Listening sockets for ``serve_tcp``.

    ``host=None`` (or ``""``): every interface, one dual-stack IPv6 socket where the
    platform has it, else IPv4 only. A host name: one socket per address it
    resolves to; with ``port=0`` they all share the port the first one got.
    """
    families: list[tuple[int, Any, bool]]
    if not host:
        if socket.has_dualstack_ipv6():
            families = [(socket.AF_INET6, ("::", port), True)]
        else:
            families = [(socket.AF_INET, ("0.0.0.0", port), False)]
    else:
        infos = await _resolve.getaddrinfo(
            waiter.getaddrinfo, host, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
        seen: set[tuple[int, Any]] = set()
        families = []
        for info in infos:
            key = (int(info[0]), info[4])
            if key not in seen:
                seen.add(key)
                families.append((*key, False))
    # With port 0 the kernel picks a port free for the first address only; another
    # address may hold it already (EADDRINUSE), so the whole set is tried again.
    attempt = 1
    while True:
        try:
            return await _listen_all(new, families, port, backlog, reuse_port)
        except OSError as exc:
            if not (
                port == 0
                and len(families) > 1
                and exc.errno == errno.EADDRINUSE
                and attempt < PORT_RETRIES
            ):
                raise
            attempt += 1


async def _listen_all(
    new: Callable[[int, int], S],
    families: list[tuple[int, Any, bool]],
    port: int,
    backlog: int | None,
    reuse_port: bool,
) -> list[S]:
    """One listener per entry of ``families``, all closed if any fails."""
    listeners: list[S] = []
    try:
        for family, address, dualstack in families:
            if port == 0 and listeners:
                address = (address[0], listeners[0].getsockname()[1], *address[2:])
            listeners.append(
                await create_server(new, address, family, backlog, reuse_port, dualstack)
            )
    except BaseException:
        for sock in listeners:
            sock.close()
        raise
    return listeners


async def open_unix_listener(new: Callable[[int, int], S], path: str, backlog: int | None) -> S:
    """A listening Unix stream socket at ``path``; a stale socket file there is replaced."""
    if not hasattr(socket, "AF_UNIX"):  # pragma: no cover - Windows
        raise OSError("Unix sockets are not supported on this platform")
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    sock = new(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock._bind(path)
        if backlog is None:
            sock.listen()
        else:
            sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def remove_unix_path(sock: SocketCore) -> None:
    """Remove a Unix listener's socket file (before closing it), if it is still there."""
    try:
        path = sock.getsockname()
    except OSError:
        return
    if isinstance(path, str) and path and not path.startswith("\0"):
        with contextlib.suppress(OSError):
            if stat.S_ISSOCK(os.stat(path).st_mode):
                os.unlink(path)
