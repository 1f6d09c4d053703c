"""httpcore network backends on asocket: ``AsyncBackend()`` and ``SyncBackend()``.

``httpcore.AsyncConnectionPool(network_backend=asocket.httpcore.AsyncBackend())``
does its I/O through asocket, on asyncio (uvloop included) and on trio; httpx
does too through a transport built on such a pool::

    transport = httpx.AsyncHTTPTransport()
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ctx, network_backend=asocket.httpcore.AsyncBackend()
    )
    async with httpx.AsyncClient(transport=transport) as client: ...

(see ``examples/httpx_client.py`` for a transport subclass that does this
cleanly). ``SyncBackend`` is the same on ``asocket.sync`` for ``httpcore.ConnectionPool``
and ``httpx.Client``.

Streams map errors as httpcore's own backends do: ``TimeoutError`` to
``ConnectTimeout`` / ``ReadTimeout`` / ``WriteTimeout``, other ``OSError``
(and ``ssl.SSLError``) to ``ConnectError`` / ``ReadError`` / ``WriteError``;
``read`` returns ``b""`` at end of file. A ``timeout`` covers the whole call.

TLS (``start_tls``): on the async face, an ``ssl.SSLObject`` over two
``ssl.MemoryBIO`` whose records go through the asocket socket (as asyncio,
trio and anyio do TLS); on the sync face the stdlib's ``SSLContext.wrap_socket``
on the socket's descriptor. Where asocket has its own TLS
(``asocket.wrap_socket`` / ``asocket.sync.wrap_socket``), that is used instead.

Importing this module imports httpcore; importing ``asocket`` does not.
"""

from __future__ import annotations

import select
import socket as _stdlib_socket
import ssl
import sys
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, TypeVar

import httpcore

from . import sync as _sync
from ._async import AsyncSocket, create_connection
from ._waiters.current import current

__all__ = ["AsyncBackend", "AsyncStream", "SyncBackend", "SyncStream"]

T = TypeVar("T")

_READ_ERRORS: dict[type[Exception], type[Exception]] = {
    TimeoutError: httpcore.ReadTimeout,
    OSError: httpcore.ReadError,
    ssl.SSLError: httpcore.ReadError,
}
_WRITE_ERRORS: dict[type[Exception], type[Exception]] = {
    TimeoutError: httpcore.WriteTimeout,
    OSError: httpcore.WriteError,
    ssl.SSLError: httpcore.WriteError,
}
_CONNECT_ERRORS: dict[type[Exception], type[Exception]] = {
    TimeoutError: httpcore.ConnectTimeout,
    OSError: httpcore.ConnectError,
    ssl.SSLError: httpcore.ConnectError,
}
_RECORD = 65536  # bytes asked of the socket per receive under TLS


def _mapped(exc: Exception, table: dict[type[Exception], type[Exception]]) -> Exception:
    """httpcore's exception for ``exc`` (first match in ``table``), or ``exc`` itself."""
    for source, target in table.items():
        if isinstance(exc, source):
            return target(exc)
    return exc


def _readable(fd: int) -> bool:
    """httpcore's ``is_readable``: a read would not wait (data, end of file, or closed)."""
    if fd < 0:
        return True
    if sys.platform == "win32":  # pragma: no cover
        return bool(select.select([fd], [], [], 0)[0])
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


def _addresses(sock: Any, info: str) -> Any:
    if info == "client_addr":
        return sock.getsockname()
    if info == "server_addr":
        return sock.getpeername()
    if info == "socket":
        return sock
    if info == "is_readable":
        return _readable(sock.fileno())
    return None


class _Deadline:
    """One timeout for a whole multi-step call: the time left before each step."""

    __slots__ = ("_end",)

    def __init__(self, timeout: float | None) -> None:
        self._end = None if timeout is None else time.monotonic() + timeout

    def left(self) -> float | None:
        if self._end is None:
            return None
        left = self._end - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        return left


# -- the async face -----------------------------------------------------------


class AsyncStream(httpcore.AsyncNetworkStream):
    """An httpcore stream over an ``asocket.socket`` (or asocket's TLS socket)."""

    def __init__(self, sock: AsyncSocket) -> None:
        self._sock = sock

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Receive up to ``max_bytes`` (``b""`` at end of file) within ``timeout``."""
        try:
            self._sock.settimeout(timeout)
            return await self._sock.recv(max_bytes)
        except Exception as exc:
            raise _mapped(exc, _READ_ERRORS) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send all of ``buffer`` within ``timeout``."""
        if not buffer:
            return
        try:
            self._sock.settimeout(timeout)
            await self._sock.sendall(buffer)
        except Exception as exc:
            raise _mapped(exc, _WRITE_ERRORS) from exc

    async def aclose(self) -> None:
        """Close the socket."""
        self._sock.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """TLS on this connection, the handshake done within ``timeout``."""
        try:
            wrap = getattr(_async_module(), "wrap_socket", None)
            if wrap is not None:
                self._sock.settimeout(timeout)
                tls = await wrap(self._sock, ssl_context, server_hostname=server_hostname)
                return AsyncStream(tls)
            stream = _AsyncTLSStream(self._sock, ssl_context, server_hostname)
            await stream.handshake(timeout)
            return stream
        except Exception as exc:
            self._sock.close()
            raise _mapped(exc, _CONNECT_ERRORS) from exc

    def get_extra_info(self, info: str) -> Any:
        """``client_addr``, ``server_addr``, ``socket``, ``is_readable``, ``ssl_object``."""
        if info == "ssl_object":
            return self._sock if hasattr(self._sock, "selected_alpn_protocol") else None
        return _addresses(self._sock, info)


def _async_module() -> Any:
    return sys.modules["asocket"]


class _AsyncTLSStream(httpcore.AsyncNetworkStream):
    """TLS over an ``asocket.socket``: an ``SSLObject`` whose records it sends and
    receives. Several tasks may use it at once (one reading while one writes): one
    of them at a time sends the records the ``SSLObject`` produced, in order."""

    def __init__(
        self, sock: AsyncSocket, context: ssl.SSLContext, server_hostname: str | None
    ) -> None:
        self._sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(
            self._incoming, self._outgoing, server_side=False, server_hostname=server_hostname
        )
        self._flushing = False

    async def _flush(self, deadline: _Deadline) -> None:
        if self._flushing:  # the task that is sending sends these records too
            return
        self._flushing = True
        try:
            while True:
                data = self._outgoing.read()
                if not data:
                    return
                self._sock.settimeout(deadline.left())
                await self._sock.sendall(data)
        finally:
            self._flushing = False

    async def _run(self, step: Callable[[], T], deadline: _Deadline) -> T:
        """Run one ``SSLObject`` call to its end: send what it wrote, receive what it
        wants to read, retry."""
        while True:
            try:
                result = step()
            except ssl.SSLWantReadError:
                pass  # (the waits below, outside the except: no chained context)
            else:
                await self._flush(deadline)
                return result
            await self._flush(deadline)
            self._sock.settimeout(deadline.left())
            data = await self._sock.recv(_RECORD)
            if data:
                self._incoming.write(data)
            else:
                self._incoming.write_eof()

    async def handshake(self, timeout: float | None) -> None:
        await self._run(self._ssl.do_handshake, _Deadline(timeout))

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Receive up to ``max_bytes`` of plaintext (``b""`` at end of file)."""
        try:
            return await self._run(partial(self._ssl.read, max_bytes), _Deadline(timeout))
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):  # as httpcore's anyio backend
            return b""
        except Exception as exc:
            raise _mapped(exc, _READ_ERRORS) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send all of ``buffer`` as TLS records within ``timeout``."""
        if not buffer:
            return
        deadline = _Deadline(timeout)
        try:
            view = memoryview(buffer)
            while view:
                sent = await self._run(partial(self._ssl.write, view), deadline)
                view = view[sent:]
        except Exception as exc:
            raise _mapped(exc, _WRITE_ERRORS) from exc

    async def aclose(self) -> None:
        """Close the socket (no close_notify, as httpcore's own backends on close)."""
        self._sock.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """TLS inside TLS is not offered (httpcore uses it only for HTTPS proxies)."""
        raise NotImplementedError("TLS over TLS")

    def get_extra_info(self, info: str) -> Any:
        """As :meth:`AsyncStream.get_extra_info`; ``ssl_object`` is the ``SSLObject``."""
        if info == "ssl_object":
            return self._ssl
        return _addresses(self._sock, info)


class AsyncBackend(httpcore.AsyncNetworkBackend):
    """httpcore's async network backend, on asocket (asyncio, uvloop, trio, anyio)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect with ``asocket.create_connection`` (Happy Eyeballs) within ``timeout``."""
        source = None if local_address is None else (local_address, 0)
        try:
            sock = await create_connection((host, port), timeout, source_address=source)
        except Exception as exc:
            raise _mapped(exc, _CONNECT_ERRORS) from exc
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.setsockopt(_stdlib_socket.IPPROTO_TCP, _stdlib_socket.TCP_NODELAY, 1)
        except Exception as exc:
            sock.close()
            raise _mapped(exc, _CONNECT_ERRORS) from exc
        return AsyncStream(sock)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to the Unix socket ``path`` within ``timeout``."""
        sock = AsyncSocket(_stdlib_socket.AF_UNIX, _stdlib_socket.SOCK_STREAM)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(timeout)
            await sock.connect(path)
        except Exception as exc:
            sock.close()
            raise _mapped(exc, _CONNECT_ERRORS) from exc
        return AsyncStream(sock)

    async def sleep(self, seconds: float) -> None:
        """Sleep on the running library (asyncio or trio)."""
        await current().sleep(seconds)


# -- the sync face ------------------------------------------------------------


class SyncStream(httpcore.NetworkStream):
    """An httpcore stream over an ``asocket.sync.socket`` (or a TLS socket on it)."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Receive up to ``max_bytes`` (``b""`` at end of file) within ``timeout``."""
        try:
            self._sock.settimeout(timeout)
            data: bytes = self._sock.recv(max_bytes)
            return data
        except Exception as exc:
            raise _mapped(exc, _READ_ERRORS) from exc

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send all of ``buffer`` within ``timeout``."""
        if not buffer:
            return
        try:
            self._sock.settimeout(timeout)
            self._sock.sendall(buffer)
        except Exception as exc:
            raise _mapped(exc, _WRITE_ERRORS) from exc

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        """TLS on this connection, the handshake done within ``timeout``."""
        try:
            self._sock.settimeout(timeout)
            wrap = getattr(_sync, "wrap_socket", None)
            if wrap is not None:
                tls = wrap(self._sock, ssl_context, server_hostname=server_hostname)
            else:
                tls = ssl_context.wrap_socket(self._sock, server_hostname=server_hostname)
        except Exception as exc:
            self._sock.close()
            raise _mapped(exc, _CONNECT_ERRORS) from exc
        return SyncStream(tls)

    def get_extra_info(self, info: str) -> Any:
        """``client_addr``, ``server_addr``, ``socket``, ``is_readable``, ``ssl_object``."""
        if info == "ssl_object":
            sock = self._sock
            if isinstance(sock, ssl.SSLSocket):
                return sock._sslobj  # type: ignore[attr-defined]  # as httpcore's own
            return sock if hasattr(sock, "selected_alpn_protocol") else None
        return _addresses(self._sock, info)


class SyncBackend(httpcore.NetworkBackend):
    """httpcore's sync network backend, on ``asocket.sync``."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Connect with ``asocket.sync.create_connection`` within ``timeout``."""
        source = None if local_address is None else (local_address, 0)
        try:
            sock = _sync.create_connection((host, port), timeout, source_address=source)
        except Exception as exc:
            raise _mapped(exc, _CONNECT_ERRORS) from exc
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.setsockopt(_stdlib_socket.IPPROTO_TCP, _stdlib_socket.TCP_NODELAY, 1)
        except Exception as exc:
            sock.close()
            raise _mapped(exc, _CONNECT_ERRORS) from exc
        return SyncStream(sock)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Connect to the Unix socket ``path`` within ``timeout``."""
        sock = _sync.socket(_stdlib_socket.AF_UNIX, _stdlib_socket.SOCK_STREAM)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(timeout)
            sock.connect(path)
        except Exception as exc:
            sock.close()
            raise _mapped(exc, _CONNECT_ERRORS) from exc
        return SyncStream(sock)

    def sleep(self, seconds: float) -> None:
        """``time.sleep``."""
        time.sleep(seconds)
