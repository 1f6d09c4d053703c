"""asocket sockets as anyio streams: ``asocket.anyio.wrap(sock)``.

``wrap`` turns a connected ``asocket.socket`` into an ``anyio.abc.SocketStream``
(``UNIXSocketStream`` for ``AF_UNIX``) and a listening one into an
``anyio.abc.SocketListener``, so anyio's stream ecosystem (``TLSStream``,
``BufferedByteReceiveStream``, ``TextStream``, ``serve``...) runs on asocket,
under anyio's asyncio backend (uvloop included) and its trio backend.

The wrapped object follows anyio's conventions, not the socket's:

* the socket is put in blocking mode (a timeout is a cancel scope's job);
* ``aclose()`` closes the socket (and is always a checkpoint);
* a call on a stream this side closed raises ``anyio.ClosedResourceError``, an
  ``OSError`` of the socket (reset, broken pipe, closed elsewhere) raises
  ``anyio.BrokenResourceError``, end of file raises ``anyio.EndOfStream``;
* two tasks receiving (or two sending) at once get ``anyio.BusyResourceError``;
* the typed attributes ``SocketAttribute.*`` are those anyio's own streams
  report (``raw_socket`` is the stdlib socket doing the syscalls: use its
  options, not its I/O).

Importing this module imports anyio; importing ``asocket`` does not.
"""

from __future__ import annotations

import socket as _stdlib_socket
from collections.abc import Collection
from io import IOBase
from typing import NoReturn

import anyio
import anyio.abc
from anyio.lowlevel import checkpoint, checkpoint_if_cancelled

from ._async import AsyncSocket, from_socket, recv_fds, send_fds

__all__ = [
    "SocketListener",
    "SocketStream",
    "UNIXSocketStream",
    "wrap",
    "wrap_listener",
    "wrap_stream",
]


class _Wrapped:
    """What the three wrappers share: the socket, the closed flag, error mapping."""

    def __init__(self, sock: AsyncSocket) -> None:
        sock.settimeout(None)  # anyio's conventions: a timeout is a cancel scope
        self._sock = sock
        self._closed = False

    @property
    def _raw_socket(self) -> _stdlib_socket.socket:
        raw: _stdlib_socket.socket = self._sock._sock
        return raw

    @property
    def socket(self) -> AsyncSocket:
        """The ``asocket.socket`` this stream owns."""
        return self._sock

    def _check(self) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        if self._sock.fileno() == -1:
            raise anyio.BrokenResourceError

    def _convert(self, exc: BaseException) -> NoReturn:
        if isinstance(exc, OSError) and not isinstance(exc, TimeoutError):
            if self._closed:
                raise anyio.ClosedResourceError from None
            raise anyio.BrokenResourceError from exc
        raise exc

    async def aclose(self) -> None:
        """Close the socket; tasks waiting on it get ``anyio.ClosedResourceError``."""
        self._closed = True
        self._sock.close()
        await checkpoint()


class SocketStream(_Wrapped, anyio.abc.SocketStream):
    """An ``anyio.abc.SocketStream`` over a connected ``asocket.socket``."""

    def __init__(self, sock: AsyncSocket) -> None:
        super().__init__(sock)
        self._receive_guard = anyio.ResourceGuard("reading from")
        self._send_guard = anyio.ResourceGuard("writing to")

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Receive up to ``max_bytes`` bytes; ``anyio.EndOfStream`` at end of file."""
        if max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")
        with self._receive_guard:
            await checkpoint_if_cancelled()
            self._check()
            try:
                data = await self._sock.recv(max_bytes)
            except BaseException as exc:
                self._convert(exc)
        if not data:
            raise anyio.EndOfStream
        return data

    async def send(self, item: bytes) -> None:
        """Send all of ``item`` (``sendall``: a cancellation sends nothing more)."""
        with self._send_guard:
            await checkpoint_if_cancelled()
            self._check()
            try:
                await self._sock.sendall(item)
            except BaseException as exc:
                self._convert(exc)

    async def send_eof(self) -> None:
        """Shut down the sending side (``SHUT_WR``); receiving goes on."""
        self._check()
        try:
            self._sock.shutdown(_stdlib_socket.SHUT_WR)
        except OSError as exc:
            self._convert(exc)
        await checkpoint()


class UNIXSocketStream(SocketStream, anyio.abc.UNIXSocketStream):
    """An ``anyio.abc.UNIXSocketStream`` over a connected ``AF_UNIX`` ``asocket.socket``."""

    async def send_fds(self, message: bytes, fds: Collection[int | IOBase]) -> None:
        """Send ``message`` with the descriptors ``fds`` (``SCM_RIGHTS``)."""
        if not message:
            raise ValueError("message must not be empty")
        if not fds:
            raise ValueError("fds must not be empty")
        filenos = [fd if isinstance(fd, int) else fd.fileno() for fd in fds]
        view = memoryview(message)
        with self._send_guard:
            await checkpoint_if_cancelled()
            self._check()
            try:
                sent = await send_fds(self._sock, [view], filenos)
                if sent < len(view):
                    await self._sock.sendall(view[sent:])
            except BaseException as exc:
                self._convert(exc)

    async def receive_fds(self, msglen: int, maxfds: int) -> tuple[bytes, list[int]]:
        """Receive up to ``msglen`` bytes and up to ``maxfds`` descriptors."""
        if not isinstance(msglen, int) or msglen < 0:
            raise ValueError("msglen must be a non-negative integer")
        if not isinstance(maxfds, int) or maxfds < 1:
            raise ValueError("maxfds must be a positive integer")
        with self._receive_guard:
            await checkpoint_if_cancelled()
            self._check()
            try:
                message, fds, _, _ = await recv_fds(self._sock, msglen, maxfds)
            except BaseException as exc:
                self._convert(exc)
        if not message and not fds:
            raise anyio.EndOfStream
        return message, fds


class SocketListener(_Wrapped, anyio.abc.SocketListener):
    """An ``anyio.abc.SocketListener`` over a listening ``asocket.socket``."""

    def __init__(self, sock: AsyncSocket) -> None:
        super().__init__(sock)
        self._accept_guard = anyio.ResourceGuard("accepting connections from")

    async def accept(self) -> SocketStream:
        """Accept a connection; TCP streams get ``TCP_NODELAY``, as anyio's do."""
        with self._accept_guard:
            await checkpoint_if_cancelled()
            self._check()
            try:
                sock, _ = await self._sock.accept()
            except BaseException as exc:
                self._convert(exc)
        if sock.family in (_stdlib_socket.AF_INET, _stdlib_socket.AF_INET6):
            sock.setsockopt(_stdlib_socket.IPPROTO_TCP, _stdlib_socket.TCP_NODELAY, 1)
        return wrap_stream(sock)


def _adopt(sock: AsyncSocket | _stdlib_socket.socket) -> AsyncSocket:
    if isinstance(sock, AsyncSocket):
        return sock
    if isinstance(sock, _stdlib_socket.socket):
        return from_socket(sock)
    raise TypeError(f"expected an asocket.socket, got {type(sock).__qualname__}")


def _listening(sock: AsyncSocket) -> bool:
    try:
        return bool(sock.getsockopt(_stdlib_socket.SOL_SOCKET, _stdlib_socket.SO_ACCEPTCONN))
    except OSError:  # pragma: no cover - platforms without SO_ACCEPTCONN
        return False


def wrap_stream(sock: AsyncSocket | _stdlib_socket.socket) -> SocketStream:
    """An anyio stream over a connected stream socket (``UNIXSocketStream`` for ``AF_UNIX``).

    Takes ownership of ``sock`` (a stdlib socket is adopted with
    ``asocket.from_socket``) and puts it in blocking mode. Raises ``TypeError``
    for anything else, ``ValueError`` for a socket that is not ``SOCK_STREAM``.
    """
    sock = _adopt(sock)
    if sock.type != _stdlib_socket.SOCK_STREAM:
        raise ValueError(f"socket type mismatch: expected SOCK_STREAM, got {sock.type.name}")
    if getattr(_stdlib_socket, "AF_UNIX", None) == sock.family:
        return UNIXSocketStream(sock)
    return SocketStream(sock)


def wrap_listener(sock: AsyncSocket | _stdlib_socket.socket) -> SocketListener:
    """An anyio listener over a listening stream socket (takes ownership, blocking mode)."""
    sock = _adopt(sock)
    if sock.type != _stdlib_socket.SOCK_STREAM:
        raise ValueError(f"socket type mismatch: expected SOCK_STREAM, got {sock.type.name}")
    return SocketListener(sock)


def wrap(sock: AsyncSocket | _stdlib_socket.socket) -> SocketStream | SocketListener:
    """``anyio.abc.SocketListener`` for a listening socket, else ``anyio.abc.SocketStream``.

    Takes ownership of ``sock``; see :func:`wrap_stream` and :func:`wrap_listener`
    (the same, typed for one kind).
    """
    sock = _adopt(sock)
    if _listening(sock):
        return wrap_listener(sock)
    return wrap_stream(sock)
