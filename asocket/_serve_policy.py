"""The server policy both faces' ``serve_tcp``/``serve_unix`` share: what to do after
each ``accept()`` (which errors to skip, the back-off), and what is logged."""

from __future__ import annotations

import errno
import logging
import math
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("asocket")

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
UNWIND = 1.0  # how long a handler has to end once stopped (cancelled; sync: connection shut)


def check_max_connections(max_connections: int | None) -> None:
    """Raise unless ``max_connections`` is None or a positive int: ``TypeError`` for
    a non-integer (a float or a bool would silently become another cap),
    ``ValueError`` for one below 1."""
    if max_connections is None:
        return
    if not isinstance(max_connections, int) or isinstance(max_connections, bool):
        kind = type(max_connections).__name__
        raise TypeError(f"max_connections must be a positive integer or None, not {kind}")
    if max_connections < 1:
        raise ValueError("max_connections must be a positive integer or None")


def check_grace_period(grace_period: float | None) -> None:
    """Raise unless ``grace_period`` is None or a number of seconds >= 0: ``TypeError``
    for a non-number (a bool included), ``ValueError`` for a negative or NaN one."""
    if grace_period is None:
        return
    if not isinstance(grace_period, int | float) or isinstance(grace_period, bool):
        kind = type(grace_period).__name__
        raise TypeError(f"grace_period must be a number or None, not {kind}")
    if math.isnan(grace_period) or grace_period < 0:
        raise ValueError("grace_period must be non-negative or None")


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
