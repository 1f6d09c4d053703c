"""``create_server``: a listening TCP socket, as the stdlib makes one (both faces)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any, TypeVar

from ._core import SocketCore

S = TypeVar("S", bound=SocketCore)


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
            if isinstance(err, socket.gaierror):
                raise
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
