"""``create_connection``: resolve, then try each address in turn (both faces)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any, TypeVar

from . import _resolve
from ._core import SocketCore
from ._waiter import Waiter

S = TypeVar("S", bound=SocketCore)


async def create_connection(
    new: Callable[[int, int, int], S],
    waiter: Waiter,
    address: tuple[Any, ...],
    timeout: Any,
    source_address: Any,
    all_errors: bool,
) -> S:
    """Connect to ``(host, port)``: every address ``getaddrinfo`` returns, in its order.

    As ``socket.create_connection``: ``timeout`` (unless left at the default
    sentinel) is set on each new socket before it connects; the last error
    is raised, or with ``all_errors=True`` an ``ExceptionGroup`` of them all.
    """
    host, port = address
    exceptions: list[OSError] = []
    infos = await _resolve.getaddrinfo(waiter.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    for family, type_, proto, _canonname, sockaddr in infos:
        sock = None
        try:
            sock = new(family, type_, proto)
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
                sock.settimeout(timeout)
            if source_address:
                await sock._bind(source_address)
            await sock._connect(sockaddr, False)
            exceptions.clear()  # no reference cycle through the tracebacks
            return sock
        except OSError as exc:
            if not all_errors:
                exceptions.clear()
            exceptions.append(exc)
            if sock is not None:
                sock.close()
    if exceptions:
        try:
            if not all_errors:
                raise exceptions[0]
            raise ExceptionGroup("create_connection failed", exceptions)
        finally:
            exceptions.clear()
    raise OSError("getaddrinfo returns an empty list")
