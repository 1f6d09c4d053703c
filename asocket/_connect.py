"""``create_connection``: resolve, then race the addresses (Happy Eyeballs, RFC 8305).

One driver for both faces. Attempts are non-blocking connects; the driver
waits for any of them with the face's ``Waiter.wait_any`` (``poll()`` on the
sync face, the loop on the async one), so neither face needs a task or a
thread per attempt.
"""

from __future__ import annotations

import math
import os
import socket
from collections import deque
from collections.abc import Callable, Sequence
from itertools import zip_longest
from typing import Any, Final, TypeVar

from . import _engine as e, _resolve, _timeouts
from ._ops import WRITE
from ._socket import SocketBase
from ._waiters.base import AddrInfo, Waiter

S = TypeVar("S", bound=SocketBase)

DELAY: Final = 0.25
"""RFC 8305's recommended Connection Attempt Delay, in seconds."""

_DEFAULT = socket._GLOBAL_DEFAULT_TIMEOUT  # type: ignore[attr-defined]


def interleave(infos: Sequence[AddrInfo]) -> list[AddrInfo]:
    """``infos`` reordered to alternate between address families (RFC 8305, section 4).

    The first family is the first address's; each family keeps the resolver's
    order of preference: ``[v6a, v6b, v4a, v4b]`` becomes ``[v6a, v4a, v6b, v4b]``.
    """
    families: dict[int, list[AddrInfo]] = {}
    for info in infos:
        families.setdefault(info[0], []).append(info)
    return [info for row in zip_longest(*families.values()) for info in row if info is not None]


def check_delay(delay: float | None) -> float | None:
    """``happy_eyeballs_delay`` as a float; ``None`` (one address at a time) passes.

    Raises ``TypeError`` for a non-number and ``ValueError`` for a negative or NaN one.
    """
    if delay is None:
        return None
    if not isinstance(delay, int | float):
        kind = type(delay).__name__
        raise TypeError(f"happy_eyeballs_delay must be a number or None, not {kind}")
    value = float(delay)
    if math.isnan(value) or value < 0:
        raise ValueError("happy_eyeballs_delay must be non-negative or None")
    return value


async def _start(
    new: Callable[[int, int, int], S], waiter: Waiter, info: AddrInfo, source: Any
) -> tuple[S, int]:
    """A new socket, non-blocking, and its connect to ``info`` begun: ``(sock, errno)``."""
    family, type_, proto, _canonname, address = info
    sock = new(family, type_, proto)
    try:
        sock.settimeout(0.0)
        if source:
            await e.bind(waiter, sock, source)
        return sock, await e.connect(waiter, sock, address, True)
    except BaseException:
        sock.close()
        raise


async def create_connection(
    new: Callable[[int, int, int], S],
    waiter: Waiter,
    address: tuple[Any, ...],
    timeout: Any,
    source_address: Any,
    all_errors: bool,
    delay: float | None = DELAY,
) -> S:
    """Connect to ``(host, port)``, racing its addresses as RFC 8305 says.

    The addresses are interleaved by family; a new attempt starts ``delay``
    seconds after the last one began, or at once when one fails (``delay=None``:
    one attempt at a time, in the resolver's order, as the stdlib). The first
    to connect wins and every other attempt is closed. ``timeout`` (else the
    default timeout) bounds the whole call, resolution included where the face
    can interrupt it, and is then set on the socket returned. Raises the last
    attempt's error (``TimeoutError('timed out')`` at the deadline), or with
    ``all_errors=True`` an ``ExceptionGroup`` of every attempt's error. A port
    outside 0-65535 raises ``OverflowError``, as ``connect`` does (the stdlib's
    ``create_connection`` lets ``getaddrinfo`` wrap it to another port).
    """
    host, port = address
    _resolve.check_port(port, "connect")  # getaddrinfo would wrap it to another port
    delay = check_delay(delay)
    timeout = _timeouts.getdefaulttimeout() if timeout is _DEFAULT else _timeouts.check(timeout)
    deadline = None if timeout is None else waiter.clock() + timeout
    infos = await _resolve.getaddrinfo(waiter, host, port, 0, socket.SOCK_STREAM, until=deadline)
    if not infos:
        raise OSError("getaddrinfo returns an empty list")
    if len(infos) == 1:  # nothing to race: connect as the stdlib does, in the final mode
        return await _connect_one(
            new, waiter, infos[0], timeout, deadline, source_address, all_errors
        )
    todo = deque(interleave(infos) if delay is not None else infos)
    errors: list[OSError] = []
    racing: list[tuple[S, Any]] = []  # attempts under way, oldest first
    next_start = waiter.clock()
    try:
        while todo or racing:
            # Every connection under way is looked at (the oldest first: it wins a tie)
            # before anything else, and so right before each wait: a wait follows a
            # look at what it waits for (the edge waiter reports changes only).
            for entry in list(racing):
                sock, sockaddr = entry
                err_or_none = e.connect_status(sock)
                if err_or_none is None:  # still under way
                    continue
                racing.remove(entry)
                if err_or_none == 0:
                    return _won(sock, sockaddr, timeout, racing, errors)
                sock.close()
                errors.append(OSError(err_or_none, os.strerror(err_or_none)))
                next_start = waiter.clock()  # a failure starts the next attempt at once
            now = waiter.clock()
            if deadline is not None and now >= deadline and timeout != 0.0:
                errors.extend(_timeouts.timed_out() for _ in range(max(len(racing), 1)))
                break
            if todo and (not racing or (delay is not None and now >= next_start)):
                info = todo.popleft()
                try:
                    sock, err = await _start(new, waiter, info, source_address)
                except OSError as exc:
                    errors.append(exc)
                    continue
                if err == 0:
                    return _won(sock, info[4], timeout, racing, errors)
                if err in e.CONNECTING and timeout != 0.0:  # (with 0.0 it fails as the stdlib)
                    racing.append((sock, info[4]))
                    next_start = now + (delay or 0.0)
                else:
                    sock.close()
                    errors.append(OSError(err, os.strerror(err)))
                continue
            if not racing:
                continue
            until = deadline
            if todo and delay is not None and (deadline is None or next_start < deadline):
                until = next_start
            await waiter.wait_any([e.watch(waiter, s) for s, _ in racing], WRITE, until)
    except BaseException:
        for sock, _ in racing:
            sock.close()
        errors.clear()
        raise
    for sock, _ in racing:
        sock.close()
    try:
        if all_errors:
            raise ExceptionGroup("create_connection failed", errors)
        raise errors[-1]
    finally:
        errors.clear()  # no reference cycle through the tracebacks


async def _connect_one(
    new: Callable[[int, int, int], S],
    waiter: Waiter,
    info: AddrInfo,
    timeout: float | None,
    deadline: float | None,
    source: Any,
    all_errors: bool,
) -> S:
    """The one address there is: a connect in the mode ``timeout`` says, by ``deadline``."""
    family, type_, proto, _canonname, address = info
    sock = None
    try:
        sock = new(family, type_, proto)
        sock.settimeout(timeout)
        if source:
            await e.bind(waiter, sock, source)
        await e.connect(waiter, sock, address, False, deadline)
        return sock
    except OSError as exc:
        if sock is not None:
            sock.close()
        if all_errors:
            raise ExceptionGroup("create_connection failed", [exc]) from None
        raise
    except BaseException:
        if sock is not None:
            sock.close()
        raise


def _won(
    sock: S, address: Any, timeout: float | None, racing: list[tuple[S, Any]], errors: list[OSError]
) -> S:
    """Close the losers and hand ``sock`` over in the mode ``timeout`` says."""
    for loser, _ in racing:
        loser.close()
    racing.clear()
    errors.clear()
    try:
        e.connected(sock, address, timeout)
    except BaseException:
        sock.close()
        raise
    return sock
