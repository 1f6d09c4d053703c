"""Listening sockets, for both faces: ``create_server`` as the stdlib makes it, and
the listeners ``serve_tcp``/``serve_unix`` open."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from . import _engine as e, _resolve
from ._socket import SocketBase
from ._waiters.base import Waiter

S = TypeVar("S", bound=SocketBase)

PORT_RETRIES = 20  # port 0 on several addresses: sets of listeners tried before EADDRINUSE


async def create_server(
    new: Callable[[int, int], S],
    waiter: Waiter,
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
            await e.bind(waiter, sock, address)
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
    resolves to; with ``port=0`` they all share the port the first one got. A port
    outside 0-65535 raises ``OverflowError``, as ``bind`` does.
    """
    _resolve.check_port(port, "bind")  # getaddrinfo would wrap it to another port
    families: list[tuple[int, Any, bool]]
    if not host:
        # The port through getaddrinfo all the same (numeric: no I/O), so that it is
        # judged as with a host: a service name or decimal string is taken, a bool refused.
        dualstack = socket.has_dualstack_ipv6()
        family = socket.AF_INET6 if dualstack else socket.AF_INET
        infos = await _resolve.getaddrinfo(
            waiter, None, port, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        )
        families = [(family, ("::" if dualstack else "0.0.0.0", infos[0][4][1]), dualstack)]
    else:
        infos = await _resolve.getaddrinfo(
            waiter, host, port, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
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
    port = families[0][1][1] if families else port  # the number getaddrinfo read
    attempt = 1
    while True:
        try:
            return await _listen_all(new, waiter, families, port, backlog, reuse_port)
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
    waiter: Waiter,
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
                await create_server(new, waiter, address, family, backlog, reuse_port, dualstack)
            )
    except BaseException:
        for sock in listeners:
            sock.close()
        raise
    return listeners


async def open_unix_listener(
    new: Callable[[int, int], S], waiter: Waiter, path: str, backlog: int | None
) -> S:
    """A listening Unix stream socket at ``path``.

    A socket file already there is replaced only if it is stale (a connect to it is
    refused); a live server's file is left alone and the bind raises
    ``OSError(EADDRINUSE)``, as the stdlib's ``bind`` does. The file's device and
    inode are recorded, so that ``remove_unix_path`` removes only this listener's own.
    """
    if not hasattr(socket, "AF_UNIX"):  # pragma: no cover - Windows
        raise OSError("Unix sockets are not supported on this platform")
    if _is_stale(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    sock = new(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await e.bind(waiter, sock, path)
        with contextlib.suppress(OSError, TypeError, ValueError):
            st = os.stat(path)
            _owned[sock] = (st.st_dev, st.st_ino)
        if backlog is None:
            sock.listen()
        else:
            sock.listen(backlog)
    except BaseException:
        _owned.pop(sock, None)
        sock.close()
        raise
    return sock


# Unix listeners -> (st_dev, st_ino) of the socket file their bind made.
_owned: weakref.WeakKeyDictionary[SocketBase, tuple[int, int]] = weakref.WeakKeyDictionary()


def _is_stale(path: Any) -> bool:
    """True if ``path`` is a socket file no server listens on (a connect is refused).

    Anything else (no file, not a socket, an abstract address, a live server
    accepting or with its backlog full, a connect we may not make) is not stale.
    """
    if not isinstance(path, str | bytes) or not path or path[:1] in ("\0", b"\0"):
        return False
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            return False
    except (OSError, ValueError):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)  # a Unix connect never waits: EAGAIN when the backlog is full
        try:
            err = probe.connect_ex(path)
        except (OSError, ValueError):
            return False
    return err == errno.ECONNREFUSED


def remove_unix_path(sock: SocketBase) -> None:
    """Remove a Unix listener's socket file (before closing it) if it is still the one
    its bind made (same device and inode): never a file another server has put there."""
    owned = _owned.pop(sock, None)
    if owned is None:
        return
    try:
        path = sock.getsockname()
    except OSError:
        return
    if isinstance(path, str) and path and not path.startswith("\0"):
        with contextlib.suppress(OSError):
            st = os.stat(path)
            if stat.S_ISSOCK(st.st_mode) and (st.st_dev, st.st_ino) == owned:
                os.unlink(path)
