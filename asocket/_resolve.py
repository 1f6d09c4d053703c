"""Address handling: which addresses need the resolver, and resolving them.

The stdlib resolves a host name inside ``connect``/``bind``/``sendto`` with a
blocking ``getaddrinfo``. Here a name is resolved first, with the face's
non-blocking resolver, and the syscall gets a numeric address; every other
address goes to the stdlib untouched, so its own checks raise its own errors.
"""

from __future__ import annotations

import re
import socket
from functools import lru_cache
from typing import Any

from ._waiters.base import AddrInfo, Waiter, getaddrinfo as _getaddrinfo

_INET = (socket.AF_INET, socket.AF_INET6)
# A service getaddrinfo reads as a port number (C's strtoul: blanks, a sign, digits).
_DECIMAL = re.compile(r"[ \t\n\v\f\r]*\+?[0-9]+\Z")


def check_port(port: Any, caller: str) -> None:
    """Raise ``OverflowError('<caller>(): port must be 0-65535.')``, the stdlib's error
    from ``bind``/``connect``, for an ``int`` port outside 0-65535, or a decimal string
    above 65535: ``getaddrinfo`` would silently wrap it to another port (70000 becomes
    4464). Any other port is left to ``getaddrinfo`` and the syscalls to judge.
    """
    if isinstance(port, bytes | bytearray):
        port = bytes(port).decode("latin-1")
    if isinstance(port, str):
        if not (port.isascii() and _DECIMAL.match(port)):
            return
        value = int(port)
    elif isinstance(port, int) and not isinstance(port, bool):
        value = port
    else:
        return
    if not 0 <= value <= 0xFFFF:
        raise OverflowError(f"{caller}(): port must be 0-65535.")


@lru_cache(maxsize=512)
def _is_numeric(family: int, host: str) -> bool:
    if host in ("", "<broadcast>"):  # the stdlib maps these itself
        return True
    try:
        socket.inet_pton(family, host.partition("%")[0] if family == socket.AF_INET6 else host)
    except (OSError, ValueError):
        return False
    return True


def needs_resolution(family: int, address: Any) -> bool:
    """True if ``address`` is an AF_INET/AF_INET6 tuple whose host is a name."""
    return (
        family in _INET
        and type(address) is tuple
        and len(address) >= 2
        and isinstance(address[0], str)
        and not _is_numeric(family, address[0])
    )


# A numeric host of each family: the stdlib parses an address holding it without a lookup.
_PLACEHOLDER: dict[int, str] = {socket.AF_INET: "0.0.0.0", socket.AF_INET6: "::"}
_probes: dict[int, socket.socket] = {}
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1  # the C int the stdlib parses a port into


def check(family: int, call: str, address: Any, args: tuple[Any, ...] = ()) -> None:
    """Raise what the stdlib's ``call(*args, address)`` raises for its arguments before it
    resolves the host name in ``address``: a wrong tuple length, a port or flowinfo of the
    wrong type, a NUL in the host, bad ``sendto`` flags... (``call``: the method name, which
    the stdlib's messages carry). Errors it finds only after the lookup are left to it.

    The stdlib's own parser runs on a closed socket of the family, the host replaced by
    a numeric one (so it never resolves), unless the host holds a NUL (refused unresolved).
    """
    probe = _probes.get(family)
    if probe is None:
        probe = socket.socket(family, socket.SOCK_STREAM)
        probe.close()  # a call on it parses its arguments, then fails with EBADF
        _probes[family] = probe
    host = address[0]
    parsed = (host if "\0" in host else _PLACEHOLDER[family], *address[1:])
    try:
        getattr(probe, call)(*args, parsed)
    except OverflowError:
        # The stdlib checks the port's range after the lookup, its C int conversion before.
        port = address[1]
        if type(port) is int and _INT_MIN <= port <= _INT_MAX:
            return
        raise
    except OSError:  # EBADF: the arguments passed
        pass


async def resolve(
    family: int,
    type: int,
    proto: int,
    address: Any,
    waiter: Waiter,
    until: float | None = None,
    call: str = "connect",
    args: tuple[Any, ...] = (),
) -> Any:
    """Return ``address`` with its host name replaced by the first address it resolves to,
    resolved off the loop by ``waiter`` (``TimeoutError`` at ``until`` where it can).

    Numeric or non-IP addresses are returned unchanged. Raises first what the stdlib's
    ``call(*args, address)`` raises before its lookup (:func:`check`), then
    ``socket.gaierror`` as the stdlib does for a name that does not resolve.
    """
    if not needs_resolution(family, address):
        return address
    check(family, call, address, args)
    host = address[0]
    # As the stdlib's setipaddr(): only the family as a hint, and an ASCII name as
    # bytes (a str would be IDNA-encoded, which refuses names the C library takes).
    name = host.encode() if host.isascii() else host
    infos = await waiter.to_thread(_getaddrinfo, name, None, family, 0, 0, 0, deadline=until)
    if not infos:  # pragma: no cover - getaddrinfo raises instead
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return (infos[0][4][0], *address[1:])


def is_numeric_host(host: Any) -> bool:
    """True for ``None`` or an IPv4/IPv6 literal: ``getaddrinfo`` answers those without I/O."""
    if host is None:
        return True
    if isinstance(host, bytes | bytearray):
        try:
            host = bytes(host).decode("ascii")
        except UnicodeDecodeError:
            return False
    if not isinstance(host, str) or not host:
        return False
    return _is_numeric(socket.AF_INET, host) or _is_numeric(socket.AF_INET6, host)


async def getaddrinfo(
    waiter: Waiter,
    host: Any,
    port: Any,
    family: int = 0,
    type: int = 0,
    proto: int = 0,
    flags: int = 0,
    *,
    until: float | None = None,
) -> list[AddrInfo]:
    """``socket.getaddrinfo`` that never blocks: literals inline, names through
    ``waiter.to_thread`` (``TimeoutError`` at ``until`` where the waiter can)."""
    if is_numeric_host(host):
        return _getaddrinfo(host, port, family, type, proto, flags)
    return await waiter.to_thread(
        _getaddrinfo, host, port, family, type, proto, flags, deadline=until
    )
