"""The async face: ``asocket.socket`` and its module functions.

Every awaitable method is one line on top of the engine. The descriptor is
always O_NONBLOCK; the mode lives in the object. Each call tries the syscall
first and waits only when it would block, through the waiter of the async
library running now (``_waiters.current``).
"""

from __future__ import annotations

import array
import socket
import ssl
import ssl as _ssl
from collections.abc import Awaitable, Coroutine, Iterable
from functools import partial
from typing import Any, Literal, Self, TypeVar, overload

from . import _connect, _engine as e, _listeners, _ops as ops, _reduction, _resolve, _surface, _tls
from ._engine import MODE
from ._file import AsyncSocketFile, CheckpointedFile
from ._socket import SocketBase, close_fd
from ._waiters.base import AddrInfo, Waiter, ebadf
from ._waiters.current import RUNNING, Running, current, notice_trio

_MSG_WAITALL = int(getattr(socket, "MSG_WAITALL", 0))
T = TypeVar("T")


def _strict() -> Waiter | None:
    """The running library's waiter if its calls must be checkpoints (trio), else None.
    Asked (after ``RUNNING.checkpoints``, False in a program without trio) by the calls
    of several steps; ``_engine.io`` asks the same for the calls of one."""
    waiter = current()
    return waiter if waiter.checkpoints else None


def _checkpoint(waiter: Waiter, call: Coroutine[Any, Any, T]) -> Awaitable[T]:
    """``call``, made a checkpoint where the running library requires it (trio)."""
    return waiter.checkpointed(call) if waiter.checkpoints else call


@_surface.documented
class AsyncSocket(SocketBase):
    """An awaitable socket with the stdlib's blocking, non-blocking and timeout modes.

    ``asocket.socket(family=-1, type=-1, proto=-1, fileno=None)``: as
    ``socket.socket``; ``fileno`` adopts an existing descriptor. Its I/O
    methods are coroutines and need a running event loop; the others return
    at once. It may be created outside a loop and used inside one.
    """

    __slots__ = ("_kept", "_w")

    def __init__(
        self,
        family: int = -1,
        type: int = -1,
        proto: int = -1,
        fileno: int | None = None,
    ) -> None:
        self._w: Waiter | None = None  # the waiter that may watch the fd (to forget it)
        self._kept = b""  # read by a cancelled MSG_WAITALL gather: the next recv* returns it
        super().__init__(family, type, proto, fileno)
        if not Running.checkpoints:
            notice_trio()

    # -- how this face waits --------------------------------------------------

    def _watcher(self, waiter: Waiter) -> Waiter:
        # The waiter that will watch the fd (the running one, for RUNNING: no proxy layer
        # in the wait), so close() can forget the fd there first.
        if waiter is RUNNING:
            waiter = current()
        old = self._w
        if old is not waiter:
            if old is not None:  # moved to another loop: let the old one go
                old.forget(e.fileno(self), None)
            self._w = waiter
        return waiter

    def _init_fd(self) -> None:
        self._sock.setblocking(False)  # the descriptor is always O_NONBLOCK on this face

    def _wake_senders(self) -> None:
        waiter = self._w
        fd = self._sock.fileno()
        if waiter is not None and fd != -1:
            waiter.wake(fd, ops.WRITE)

    def _set_mode(self, timeout: float | None) -> None:
        self._timeout = timeout
        if self._sock.fileno() == -1:
            raise ebadf()

    def _real_close(self) -> None:
        self._kept = b""
        waiter, self._w = self._w, None
        if waiter is None:
            self._sock.close()
            return
        fd = self._sock.detach()
        if fd != -1:
            waiter.forget(fd, partial(close_fd, fd))

    def detach(self) -> int:
        self._closed = True
        self._kept = b""
        waiter, self._w = self._w, None
        fd = self._sock.detach()
        if waiter is not None and fd != -1:
            waiter.forget(fd, None)
        return fd

    def makefile(
        self,
        mode: str = "rb",
        buffering: int | None = None,
        *,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> AsyncSocketFile:
        # (Once the program has imported trio, files whose every call is a checkpoint.)
        make = CheckpointedFile if Running.checkpoints else AsyncSocketFile
        return make(self, mode, buffering, text=(encoding, errors, newline))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    # -- awaitable calls ------------------------------------------------------

    async def accept(self) -> tuple[AsyncSocket, Any]:
        fd, address = await e.accept(RUNNING, self)
        return self._new(fd), address

    async def bind(self, address: Any, /) -> None:
        if RUNNING.checkpoints and (waiter := _strict()):
            return await waiter.checkpointed(e.bind(waiter, self, address))
        await e.bind(RUNNING, self, address)

    async def connect(self, address: Any, /) -> None:
        if RUNNING.checkpoints and (waiter := _strict()):
            await waiter.checkpointed(e.connect(waiter, self, address, False))
            return
        await e.connect(RUNNING, self, address, False)

    async def connect_ex(self, address: Any, /) -> int:
        if RUNNING.checkpoints and (waiter := _strict()):
            return await waiter.checkpointed(e.connect(waiter, self, address, True))
        return await e.connect(RUNNING, self, address, True)

    async def recv(self, bufsize: int, flags: int = 0, /) -> bytes:
        if self._kept:
            return await e.recv_kept(RUNNING, self, bufsize, flags)
        recv = self._sock.recv
        if flags:
            if isinstance(flags, int) and flags & _MSG_WAITALL and e.gathers(self, flags):
                return await e.recv_waitall(RUNNING, self, bufsize, flags)
            return await e.io(RUNNING, self, ops.RECV, recv, bufsize, flags)
        until: Any = MODE  # (the mode's deadline, unless a wait below took it)
        if self._waited or RUNNING.checkpoints:  # (the read hint's path, or trio's)
            size = bufsize if type(bufsize) is int and type(flags) is int else 0
            if RUNNING.checkpoints and (waiter := _strict()):
                return await e.read(waiter, self, ops.RECV, recv, size, (bufsize, flags))
            if e.waits_first(self, size):  # a slow peer: wait here, then try (e.wait_first,
                fd = self._sock.fileno()  # inlined: a call and a tuple less per request)
                if fd == -1:
                    raise ebadf()
                watcher = self._watcher(RUNNING)
                until = None if self._timeout is None else watcher.clock() + self._timeout
                await watcher.wait(fd, ops.READ, until)
            else:
                self._waited = False
        try:  # the first attempt inline (the engine's attempt()): no coroutine, no frame
            return recv(bufsize, flags)
        except e.WOULD_BLOCK as exc:
            error = exc
        hint = type(bufsize) is int and bufsize > 0
        args = (bufsize, flags)
        return await e.rest(RUNNING, self, ops.RECV, recv, args, error, hint, until)

    async def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        if self._kept:
            return await e.recv_into_kept(RUNNING, self, buffer, nbytes, flags)
        recv_into = self._sock.recv_into
        if flags:
            if isinstance(flags, int) and flags & _MSG_WAITALL and e.gathers(self, flags):
                return await e.recv_into_waitall(RUNNING, self, buffer, nbytes, flags)
            return await e.io(RUNNING, self, ops.RECV_INTO, recv_into, buffer, nbytes, flags)
        until: Any = MODE
        if self._waited or RUNNING.checkpoints:  # (the read hint's path, or trio's)
            size = e.read_size(buffer, nbytes) if type(flags) is int else 0
            if RUNNING.checkpoints and (waiter := _strict()):
                args = (buffer, nbytes, flags)
                return await e.read(waiter, self, ops.RECV_INTO, recv_into, size, args)
            if e.waits_first(self, size):  # (as recv())
                wait, until = e.wait_first(RUNNING, self, ops.RECV_INTO)
                await wait
            else:
                self._waited = False
        try:  # the first attempt inline, as recv()
            return recv_into(buffer, nbytes, flags)
        except e.WOULD_BLOCK as exc:
            error = exc
        args = (buffer, nbytes, flags)
        hint = self._timeout != 0.0 and e.read_size(buffer, nbytes) > 0  # (0.0: never waits)
        return await e.rest(RUNNING, self, ops.RECV_INTO, recv_into, args, error, hint, until)

    async def recvfrom(self, bufsize: int, flags: int = 0, /) -> tuple[bytes, Any]:
        if self._kept:  # (a connected stream socket's recvfrom gives no address)
            return await e.recv_kept(RUNNING, self, bufsize, flags), None
        return await e.io(RUNNING, self, ops.RECVFROM, self._sock.recvfrom, bufsize, flags)

    async def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        if self._kept:
            return await e.recv_into_kept(RUNNING, self, buffer, nbytes, flags), None
        recvfrom_into = self._sock.recvfrom_into
        return await e.io(RUNNING, self, ops.RECVFROM_INTO, recvfrom_into, buffer, nbytes, flags)

    async def recvmsg(
        self, bufsize: int, ancbufsize: int = 0, flags: int = 0, /
    ) -> tuple[bytes, list[tuple[int, int, bytes]], int, Any]:
        if self._kept:
            return await e.recv_kept(RUNNING, self, bufsize, flags), [], 0, None
        recvmsg = self._sock.recvmsg
        return await e.io(RUNNING, self, ops.RECVMSG, recvmsg, bufsize, ancbufsize, flags)

    async def recvmsg_into(
        self, buffers: Iterable[Any], ancbufsize: int = 0, flags: int = 0, /
    ) -> tuple[int, list[tuple[int, int, bytes]], int, Any]:
        if self._kept:
            return e.recvmsg_into_kept(self, buffers, flags), [], 0, None
        recvmsg_into = self._sock.recvmsg_into
        return await e.io(RUNNING, self, ops.RECVMSG_INTO, recvmsg_into, buffers, ancbufsize, flags)

    async def send(self, data: Any, flags: int = 0, /) -> int:
        send = self._sock.send
        if RUNNING.checkpoints:
            return await e.io(RUNNING, self, ops.SEND, send, data, flags)
        try:  # the first attempt inline, as recv()
            return send(data, flags)
        except e.WOULD_BLOCK as exc:
            error = exc
        return await e.rest(RUNNING, self, ops.SEND, send, (data, flags), error)

    async def sendall(self, data: Any, flags: int = 0, /) -> None:
        if RUNNING.checkpoints and (waiter := _strict()):
            return await e.checkpointed_sendall(waiter, self, data, flags)
        sent = e.send_first(self, data, flags)
        if sent is not None:
            await e.sendall(RUNNING, self, data, flags, sent)

    async def sendto(self, data: Any, /, *args: Any) -> int:
        waiter = RUNNING
        if args and e.needs_resolution(self, args[-1]):
            address = await e.resolve(waiter, self, args[-1], None, "sendto", (data, *args[:-1]))
            args = (*args[:-1], address)
        return await e.io(waiter, self, ops.SENDTO, self._sock.sendto, data, *args)

    async def sendmsg(
        self,
        buffers: Iterable[Any],
        ancdata: Iterable[tuple[int, int, Any]] = (),
        flags: int = 0,
        address: Any = None,
        /,
    ) -> int:
        waiter = RUNNING
        sendmsg = self._sock.sendmsg
        if address is None:
            return await e.io(waiter, self, ops.SENDMSG, sendmsg, buffers, ancdata, flags)
        address = await e.resolve(waiter, self, address, None, "sendmsg", ([], (), flags))
        return await e.io(waiter, self, ops.SENDMSG, sendmsg, buffers, ancdata, flags, address)

    if hasattr(socket.socket, "sendmsg_afalg"):  # Linux

        async def sendmsg_afalg(self, *args: Any, **kwargs: Any) -> int:
            afalg = partial(self._sock.sendmsg_afalg, *args, **kwargs)
            return await e.io(RUNNING, self, ops.SENDMSG, afalg)

    async def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        if RUNNING.checkpoints and (waiter := _strict()):
            return await waiter.checkpointed(e.sendfile(waiter, self, file, offset, count))
        return await e.sendfile(RUNNING, self, file, offset, count)


# The stdlib's repr names the class as users spell it: <asocket.socket fd=...>.
AsyncSocket.__module__ = "asocket"
AsyncSocket.__qualname__ = "socket"

_reduction.register(AsyncSocket)  # multiprocessing passes it to other processes


# -- module functions ---------------------------------------------------------


@_surface.function
def socketpair(
    family: int | None = None, type: int = socket.SOCK_STREAM, proto: int = 0
) -> tuple[AsyncSocket, AsyncSocket]:
    return AsyncSocket._pair(family, type, proto)


@_surface.function
def fromfd(fd: int, family: int, type: int, proto: int = 0) -> AsyncSocket:
    return AsyncSocket._fromfd(fd, family, type, proto)


@_surface.function
def from_socket(sock: socket.socket) -> AsyncSocket:
    return AsyncSocket._adopt(sock)


@overload
async def create_connection(
    address: tuple[Any, ...],
    timeout: Any = ...,
    source_address: Any = ...,
    *,
    all_errors: bool = ...,
    happy_eyeballs_delay: float | None = ...,
    ssl: None = ...,
    server_hostname: None = ...,
    ssl_handshake_timeout: None = ...,
) -> AsyncSocket: ...


@overload
async def create_connection(
    address: tuple[Any, ...],
    timeout: Any = ...,
    source_address: Any = ...,
    *,
    all_errors: bool = ...,
    happy_eyeballs_delay: float | None = ...,
    ssl: _ssl.SSLContext | Literal[True],
    server_hostname: str | None = ...,
    ssl_handshake_timeout: float | None = ...,
) -> AsyncSSLSocket: ...


@_surface.function
async def create_connection(
    address: tuple[Any, ...],
    timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
    source_address: Any = None,
    *,
    all_errors: bool = False,
    happy_eyeballs_delay: float | None = _connect.DELAY,
    ssl: _ssl.SSLContext | bool | None = None,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
) -> AsyncSocket:
    waiter = current()
    context = _tls.check_ssl_args(ssl, server_hostname, ssl_handshake_timeout)
    until = None if context is None else _tls.call_until(waiter, timeout)
    connect = _checkpoint(
        waiter,
        _connect.create_connection(
            AsyncSocket, waiter, address, timeout, source_address, all_errors, happy_eyeballs_delay
        ),
    )
    sock = await connect
    if context is None:
        return sock
    handshake = _tls.handshake_new(
        waiter,
        AsyncSSLSocket._from_inner,
        sock,
        context,
        False,
        server_hostname or address[0],
        _tls.handshake_deadline(waiter, until, ssl_handshake_timeout),
    )
    tls: AsyncSSLSocket = await handshake
    return tls


@_surface.function
async def create_server(
    address: Any,
    *,
    family: int = socket.AF_INET,
    backlog: int | None = None,
    reuse_port: bool = False,
    dualstack_ipv6: bool = False,
) -> AsyncSocket:
    waiter = current()
    return await _checkpoint(
        waiter,
        _listeners.create_server(
            AsyncSocket, waiter, address, family, backlog, reuse_port, dualstack_ipv6
        ),
    )


async def getaddrinfo(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> list[AddrInfo]:
    """``socket.getaddrinfo`` without blocking the loop (literals are answered inline)."""
    waiter = current()
    lookup = _resolve.getaddrinfo(waiter, host, port, family, type, proto, flags)
    return await _checkpoint(waiter, lookup)


async def _in_thread(fn: Any, *args: Any) -> Any:
    return await current().to_thread(fn, *args, deadline=None)


async def getnameinfo(sockaddr: tuple[Any, ...], flags: int) -> tuple[str, str]:
    """``socket.getnameinfo`` on a worker thread."""
    result: tuple[str, str] = await _in_thread(socket.getnameinfo, sockaddr, flags)
    return result


async def gethostbyname(hostname: str) -> str:
    """``socket.gethostbyname`` on a worker thread."""
    result: str = await _in_thread(socket.gethostbyname, hostname)
    return result


async def gethostbyname_ex(hostname: str) -> tuple[str, list[str], list[str]]:
    """``socket.gethostbyname_ex`` on a worker thread."""
    result: tuple[str, list[str], list[str]] = await _in_thread(socket.gethostbyname_ex, hostname)
    return result


async def gethostbyaddr(ip_address: str) -> tuple[str, list[str], list[str]]:
    """``socket.gethostbyaddr`` on a worker thread."""
    result: tuple[str, list[str], list[str]] = await _in_thread(socket.gethostbyaddr, ip_address)
    return result


async def getfqdn(name: str = "") -> str:
    """``socket.getfqdn`` on a worker thread."""
    result: str = await _in_thread(socket.getfqdn, name)
    return result


async def send_fds(
    sock: AsyncSocket,
    buffers: Iterable[Any],
    fds: Iterable[int],
    flags: int = 0,
    address: Any = None,
) -> int:
    """Send ``fds`` over a Unix socket along with ``buffers`` (``socket.send_fds``)."""
    ancdata = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
    return await sock.sendmsg(buffers, ancdata, flags, address)


async def recv_fds(
    sock: AsyncSocket, bufsize: int, maxfds: int, flags: int = 0
) -> tuple[bytes, list[int], int, Any]:
    """Receive up to ``maxfds`` descriptors (``socket.recv_fds``): ``(data, fds, flags, addr)``."""
    fds = array.array("i")
    # As the stdlib's recv_fds (3.11), ``flags`` is accepted and not passed on.
    msg, ancdata, msg_flags, addr = await sock.recvmsg(
        bufsize, socket.CMSG_LEN(maxfds * fds.itemsize)
    )
    for level, type_, data in ancdata:
        if level == socket.SOL_SOCKET and type_ == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return msg, list(fds), msg_flags, addr


# -- TLS ------------------------------------------------------------------------


class AsyncSSLSocket(_tls.TLSMethods, AsyncSocket):
    """An awaitable TLS socket: the stdlib's ``ssl.SSLSocket``, awaitable.

    Made by ``await asocket.wrap_socket(...)`` (no public constructor). Its I/O
    methods (``do_handshake``, ``recv``, ``recv_into``, ``send``, ``sendall``,
    ``sendfile``, ``unwrap``, ``accept``) are coroutines; the rest are plain, as
    on ``asocket.socket``. Modes, errors and messages are the stdlib
    ``SSLSocket``'s; see the TLS page of the docs for what asocket adds.
    """

    __slots__ = ("_pending", "_wire")

    _sock: ssl.SSLSocket
    _pending: bytes | memoryview | None
    _wire: _tls.Wire

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise _tls.no_constructor(type(self))

    @classmethod
    def _from_inner(cls, inner: ssl.SSLSocket, timeout: float | None) -> Self:
        self = cls.__new__(cls)
        self._pending = None
        self._wire = _tls.wire_of(inner)
        AsyncSocket.__init__(self, inner.family, inner.type, inner.proto, inner.fileno())
        self._sock.detach()  # the base made a raw socket on the fd: the inner one takes its place
        self._sock = inner
        self.settimeout(timeout)
        return self

    def _new(self, fd: int) -> AsyncSocket:  # type: ignore[override]
        return AsyncSocket(self._family, self._sock.type, self._sock.proto, fileno=fd)

    def _real_close(self) -> None:
        _tls.drop_ssl(self._sock)
        super()._real_close()

    def detach(self) -> int:
        _tls.drop_ssl(self._sock)
        return super().detach()

    def _file_recv_into(self, waiter: Any, until: float | None, view: memoryview) -> Any:
        return _tls.file_recv_into(waiter, self, until, view)  # makefile()'s receive

    def _file_send(self, waiter: Any, until: float | None, view: memoryview) -> Any:
        return _tls.file_send(waiter, self, until, view)  # makefile()'s send

    async def do_handshake(self, block: bool = False) -> None:
        """Perform the TLS handshake (``block`` is accepted and ignored, as the mode rules)."""
        await _tls.do_handshake(current(), self)

    async def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        """Receive up to ``buflen`` bytes of plaintext; ``b''`` at the end of the stream
        (close_notify, or a ragged EOF with ``suppress_ragged_eofs``)."""
        size = buflen if type(buflen) is int else 0
        return await _tls.read(RUNNING, self, self._sock.recv, (buflen, flags), size, flags)

    async def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        """Receive plaintext into ``buffer`` (up to ``nbytes``, or its size); return the count."""
        size = e.read_size(buffer, nbytes or 0)
        args = (self, buffer, nbytes, flags)
        return await _tls.read(RUNNING, self, _tls.records_into, args, size, flags)

    async def read(self, len: int = 1024, buffer: Any = None) -> Any:
        """The stdlib's legacy ``read``: up to ``len`` bytes (or into ``buffer``: the count);
        ``ValueError`` once closed or unwrapped."""
        args = (len,) if buffer is None else (len, buffer)
        args = (self, self._sock.read, *args)
        return await _tls.call(current(), self, _tls.TLS_READ, _tls.READ_TIMEOUT, _tls.pump, *args)

    async def write(self, data: Any) -> int:
        """The stdlib's legacy ``write``: ``send`` without flags; ``ValueError`` once closed."""
        if self._sock._sslobj is None:  # type: ignore[attr-defined]
            return self._sock.write(data)  # the stdlib's ValueError
        return await _tls.send(current(), self, data)

    async def send(self, data: Any, flags: int = 0) -> int:
        """Send plaintext; return the count sent. A write interrupted earlier (timeout,
        cancellation, non-blocking mode) is finished first; see the TLS docs."""
        if not flags:
            n = _tls.try_send(self, data)
            if n is not None:
                return n
        return await _tls.send(current(), self, data, flags)

    async def sendall(self, data: Any, flags: int = 0) -> None:
        """Send all of ``data``; the timeout covers the whole call. Interrupted, it never
        corrupts the stream: the next write finishes the TLS record it left."""
        if not flags and _tls.small(data) and _tls.try_send(self, data) == len(data):
            return
        await _tls.sendall(current(), self, data, flags)

    async def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """Send a file through TLS (read in blocks and sent; no kernel TLS); return the
        byte count. As the stdlib: ``ValueError`` in non-blocking mode, the timeout per block."""
        return await _tls.sendfile(current(), self, file, offset, count)

    async def unwrap(self) -> AsyncSocket:
        """Shut TLS down (close_notify both ways, under the mode); return the plain
        socket, which keeps the descriptor and the mode. This socket is then closed."""
        await _tls.unwrap(current(), self)
        family, type_, proto, timeout = (
            self._family,
            self._sock.type,
            self._sock.proto,
            self._timeout,
        )
        plain = AsyncSocket(family, type_, proto, self.detach())
        plain.settimeout(timeout)
        return plain

    async def connect(self, address: Any, /) -> None:
        """Connect a socket wrapped unconnected, then (``do_handshake_on_connect``) do the
        handshake, as the stdlib's ``SSLSocket.connect``."""
        await _tls.connect(current(), self, address, False)

    async def connect_ex(self, address: Any, /) -> int:
        """As ``connect()``, but return the connect's errno instead of raising (0: done)."""
        return await _tls.connect(current(), self, address, True)

    async def accept(self) -> tuple[AsyncSSLSocket, Any]:
        """Accept a connection and wrap it server-side (handshake as this socket's)."""
        conn, address = await AsyncSocket.accept(self)
        tls = await wrap_socket(
            conn,
            self.context,
            server_side=True,
            do_handshake_on_connect=self.do_handshake_on_connect,
            suppress_ragged_eofs=self.suppress_ragged_eofs,
        )
        return tls, address


AsyncSSLSocket.__module__ = "asocket"
AsyncSSLSocket.__qualname__ = AsyncSSLSocket.__name__ = "SSLSocket"


@_surface.function
async def wrap_socket(
    sock: AsyncSocket,
    context: ssl.SSLContext,
    *,
    server_side: bool = False,
    server_hostname: str | None = None,
    do_handshake_on_connect: bool = True,
    suppress_ragged_eofs: bool = True,
    session: ssl.SSLSession | None = None,
) -> AsyncSSLSocket:
    tls, handshake = _tls.wrap(
        AsyncSSLSocket._from_inner,
        sock,
        context,
        server_side,
        server_hostname,
        do_handshake_on_connect,
        suppress_ragged_eofs,
        session,
    )
    if handshake:
        try:
            await _tls.do_handshake(current(), tls)
        except BaseException:
            tls.close()
            raise
    return tls
