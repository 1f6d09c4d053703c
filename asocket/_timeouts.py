"""Timeout values: validation, the module default, deadlines and the one TimeoutError."""

from __future__ import annotations

import _socket
import math
import operator

# A closed socket object: its settimeout() validates a value exactly as the
# stdlib does (same exception types and messages), then fails with EBADF.
_probe = _socket.socket()
_probe.close()

_default: float | None = None


def check(value: float | None) -> float | None:
    """Return ``value`` as a timeout (``None`` or a float >= 0).

    Raises what the stdlib's ``settimeout`` raises for the same value:
    ``TypeError`` for a non-number, ``ValueError`` for a negative or NaN value,
    ``OverflowError`` for one too large.
    """
    if value is None:
        return None
    try:
        _probe.settimeout(value)
    except OSError:  # EBADF: the value itself was accepted
        pass
    # As the C module: whole nanoseconds, a float rounded up (_PyTime_ROUND_TIMEOUT).
    if isinstance(value, float):
        ns = math.ceil(value * 1e9)
    else:
        ns = operator.index(value) * 1_000_000_000
    secs, rest = divmod(ns, 1_000_000_000)
    return float(secs) if not rest else ns / 1e9


def check_blocking(flag: object) -> None:
    """Raise what the stdlib's ``setblocking`` raises for ``flag`` (``TypeError``)."""
    try:
        _probe.setblocking(flag)  # type: ignore[arg-type]
    except OSError:  # EBADF: the value itself was accepted
        pass


def getdefaulttimeout() -> float | None:
    """Return the default timeout in seconds (float) for new sockets; ``None``: no timeout."""
    return _default


def setdefaulttimeout(timeout: float | None) -> None:
    """Set the default timeout in seconds (float) for new sockets; ``None``: no timeout.

    Raises what ``settimeout()`` raises for a bad value, as the stdlib does.
    """
    global _default
    _default = check(timeout)


def timed_out() -> TimeoutError:
    """The exception a call raises when its timeout expires: ``TimeoutError('timed out')``."""
    return TimeoutError("timed out")
