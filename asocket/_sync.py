"""The sync face: ``asocket.sync.socket``, every call blocking, no event loop.

In blocking mode the descriptor is blocking and a call is one syscall, as in
the stdlib: the kernel waits. In timeout and non-blocking modes it is
O_NONBLOCK: the call is the engine's :func:`~asocket._engine.attempt`, inline;
only when it must wait does the engine's coroutine run, its waiter blocking in
``poll()``. Every call that may block passes the socket's :class:`~asocket._gate.Gate`,
so ``close()`` from another thread wakes it with ``OSError(EBADF)``.
"""

from __future__ import annotations

import socket
import ssl
import ssl as _ssl
import threading
from collections.abc import Callable, Coroutine, Iterable
from functools import partial
from typing import Any, Literal, Protocol, Self, TypeVar, overload

from . import _connect, _engine as e, _listeners, _ops as ops, _reduction, _surface, _tls
from ._gate import Gate, gated
from ._socket import RawSocket, SocketBase
from ._waiters.base import ebadf
from ._waiters.poll import WAITER

T = TypeVar("T")


class _Call(Protocol):
    def __call__(self, op: ops.Op, fn: Callable[..., T], /, *args: Any) -> T: ...


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run an engine coroutine to its end in one step.

    Raises ``RuntimeError`` if it suspends: the sync waiter blocks, never yields.
    """
    try:
        coro.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coro.close()
    raise RuntimeError("asocket.sync: an engine coroutine suspended; the sync face never yields")


@_surface.documented
class SyncSocket(SocketBase):
    """A blocking socket with the stdlib's semantics, sharable between threads.

    ``asocket.sync.socket(family=-1, type=-1, proto=-1, fileno=None)``: as
    ``socket.socket``; ``fileno`` adopts an existing descriptor.
    """

    __slots__ = ("_call", "_gate")

    _gate: Gate
    # How a one-step call runs in the current mode (set by _set_mode): in blocking mode
    # the gate's call (the kernel waits), else the engine's attempt and wait.
    _call: _Call

    def __init__(
        self,
        family: int = -1,
        type: int = -1,
        proto: int = -1,
        fileno: int | None = None,
    ) -> None:
        super().__init__(family, type, proto, fileno)

    # -- how this face waits --------------------------------------------------

    def _init_fd(self) -> None:
        self._gate = Gate(self._sock)
        # As the stdlib's constructor: in blocking mode the flag is left alone (a new
        # descriptor is blocking, an adopted one keeps the flag its owner set; fromfd()'s
        # dup shares that flag with the original, which must not change).
        if self._timeout is not None:
            self._sock.settimeout(0.0)
            self._call = self._call_nonblocking
        else:
            if self._sock.gettimeout() is not None:  # it met the stdlib's default timeout
                self._sock.settimeout(None)
            self._call = self._gate.call

    def _set_mode(self, timeout: float | None) -> None:
        # As the stdlib: blocking mode gets a blocking descriptor, the others O_NONBLOCK.
        self._timeout = timeout  # recorded even if the socket is closed (EBADF below)
        self._call = self._gate.call if timeout is None else self._call_nonblocking
        self._sock.settimeout(None if timeout is None else 0.0)

    def _call_nonblocking(self, op: ops.Op, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the O_NONBLOCK descriptor of timeout and non-blocking modes:
        the engine's attempt, inline, then its wait (through the gate)."""
        try:  # (the engine's attempt(), inlined: this is every call's hot path)
            return fn(*args)
        except e.WOULD_BLOCK as exc:
            error = exc
        return self._rest_of_call(op, fn, args, error)  # (outside: no chained context)

    def _rest_of_call(
        self, op: ops.Op, fn: Callable[..., T], args: tuple[Any, ...], exc: OSError
    ) -> T:
        """The rest of a call on the O_NONBLOCK descriptor whose attempt raised ``exc``
        (one of the engine's ``WOULD_BLOCK``): raised as the mode says, or the wait
        (through the gate) and the attempts after it. (The gated methods call it too.)"""
        wait = e.settle(self, op, fn, args, exc)
        if not isinstance(wait, e.Wait):
            return wait
        waited: T = self._gate.call(op, self._wait, op, fn, args, wait.event)
        return waited

    def _wait(self, op: ops.Op, fn: Callable[..., T], args: tuple[Any, ...], event: int) -> T:
        return run(e.retry(WAITER, self, op, fn, args, event, e.deadline(WAITER, self._timeout)))

    def _drive(self, coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run the engine coroutine ``coro()`` makes, through the gate."""
        result: T = self._gate.call(None, _run_made, coro)
        return result

    def _real_close(self) -> None:
        self._gate.close(self._sock)

    def detach(self) -> int:
        self._closed = True
        return self._sock.detach()

    def makefile(
        self,
        mode: str = "r",
        buffering: int | None = None,
        *,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> Any:
        return RawSocket.makefile(  # type: ignore[call-overload]
            self, mode, buffering, encoding=encoding, errors=errors, newline=newline
        )

    # -- calls ----------------------------------------------------------------

    def _accept(self) -> tuple[int, Any]:
        """``(fd, address)`` of a new connection: the stdlib's ``socket._accept``."""
        accepted: tuple[int, Any] = self._call(ops.ACCEPT, self._sock._accept)  # type: ignore[attr-defined]
        return accepted

    def accept(self) -> tuple[SyncSocket, Any]:
        fd, address = self._accept()
        sock = self._new(fd)
        if sock._timeout is None and self._timeout:
            # As the stdlib (bpo-7995): where the new descriptor inherits O_NONBLOCK from
            # the listening one (BSD, macOS), blocking mode must clear it.
            sock.setblocking(True)
        return sock, address

    def bind(self, address: Any, /) -> None:
        run(e.bind(WAITER, self, address))

    def connect(self, address: Any, /) -> None:
        self._drive(partial(e.connect, WAITER, self, address, False))

    def connect_ex(self, address: Any, /) -> int:
        return self._drive(partial(e.connect, WAITER, self, address, True))

    @gated(ops.RECV, e.WOULD_BLOCK)
    def recv(self, bufsize: int, flags: int = 0, /) -> bytes:
        return self._call(ops.RECV, self._sock.recv, bufsize, flags)

    @gated(ops.RECV_INTO, e.WOULD_BLOCK)
    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        return self._call(ops.RECV_INTO, self._sock.recv_into, buffer, nbytes, flags)

    def recvfrom(self, bufsize: int, flags: int = 0, /) -> tuple[bytes, Any]:
        return self._call(ops.RECVFROM, self._sock.recvfrom, bufsize, flags)

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        return self._call(ops.RECVFROM_INTO, self._sock.recvfrom_into, buffer, nbytes, flags)

    def recvmsg(
        self, bufsize: int, ancbufsize: int = 0, flags: int = 0, /
    ) -> tuple[bytes, list[tuple[int, int, bytes]], int, Any]:
        return self._call(ops.RECVMSG, self._sock.recvmsg, bufsize, ancbufsize, flags)

    def recvmsg_into(
        self, buffers: Iterable[Any], ancbufsize: int = 0, flags: int = 0, /
    ) -> tuple[int, list[tuple[int, int, bytes]], int, Any]:
        return self._call(ops.RECVMSG_INTO, self._sock.recvmsg_into, buffers, ancbufsize, flags)

    @gated(ops.SEND, e.WOULD_BLOCK)
    def send(self, data: Any, flags: int = 0, /) -> int:
        return self._call(ops.SEND, self._sock.send, data, flags)

    @gated(ops.SENDALL)
    def sendall(self, data: Any, flags: int = 0, /) -> None:
        if self._timeout is None:  # blocking mode, once close() began (else the gated call)
            self._gate.call(ops.SENDALL, self._sock.sendall, data, flags)
            return
        sent = e.send_first(self, data, flags)  # (the O_NONBLOCK descriptor never blocks)
        if sent is not None:
            self._drive(partial(e.sendall, WAITER, self, data, flags, sent))

    def sendto(self, data: Any, /, *args: Any) -> int:
        if args and e.needs_resolution(self, args[-1]):
            address = run(e.resolve(WAITER, self, args[-1], None, "sendto", (data, *args[:-1])))
            args = (*args[:-1], address)
        return self._call(ops.SENDTO, self._sock.sendto, data, *args)

    def sendmsg(
        self,
        buffers: Iterable[Any],
        ancdata: Iterable[tuple[int, int, Any]] = (),
        flags: int = 0,
        address: Any = None,
        /,
    ) -> int:
        if address is None:
            return self._call(ops.SENDMSG, self._sock.sendmsg, buffers, ancdata, flags)
        if e.needs_resolution(self, address):
            address = run(e.resolve(WAITER, self, address, None, "sendmsg", ([], (), flags)))
        return self._call(ops.SENDMSG, self._sock.sendmsg, buffers, ancdata, flags, address)

    if hasattr(socket.socket, "sendmsg_afalg"):  # Linux

        def sendmsg_afalg(self, *args: Any, **kwargs: Any) -> int:
            return self._call(ops.SENDMSG, partial(self._sock.sendmsg_afalg, *args, **kwargs))

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        return self._drive(partial(e.sendfile, WAITER, self, file, offset, count))


def _run_made(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return run(make())


# The stdlib's repr names the class as users spell it: <asocket.sync.socket fd=...>.
SyncSocket.__module__ = "asocket.sync"
SyncSocket.__qualname__ = "socket"

_reduction.register(SyncSocket)  # multiprocessing passes it to other processes


# -- module functions ---------------------------------------------------------


@_surface.function
def socketpair(
    family: int | None = None, type: int = socket.SOCK_STREAM, proto: int = 0
) -> tuple[SyncSocket, SyncSocket]:
    return SyncSocket._pair(family, type, proto)


@_surface.function
def fromfd(fd: int, family: int, type: int, proto: int = 0) -> SyncSocket:
    return SyncSocket._fromfd(fd, family, type, proto)


@_surface.function
def from_socket(sock: socket.socket) -> SyncSocket:
    return SyncSocket._adopt(sock)


@overload
def create_connection(
    address: tuple[Any, ...],
    timeout: Any = ...,
    source_address: Any = ...,
    *,
    all_errors: bool = ...,
    happy_eyeballs_delay: float | None = ...,
    ssl: None = ...,
    server_hostname: None = ...,
    ssl_handshake_timeout: None = ...,
) -> SyncSocket: ...


@overload
def create_connection(
    address: tuple[Any, ...],
    timeout: Any = ...,
    source_address: Any = ...,
    *,
    all_errors: bool = ...,
    happy_eyeballs_delay: float | None = ...,
    ssl: _ssl.SSLContext | Literal[True],
    server_hostname: str | None = ...,
    ssl_handshake_timeout: float | None = ...,
) -> SyncSSLSocket: ...


@_surface.function
def create_connection(
    address: tuple[Any, ...],
    timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
    source_address: Any = None,
    *,
    all_errors: bool = False,
    happy_eyeballs_delay: float | None = _connect.DELAY,
    ssl: _ssl.SSLContext | bool | None = None,
    server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None,
) -> SyncSocket:
    waiter = WAITER
    context = _tls.check_ssl_args(ssl, server_hostname, ssl_handshake_timeout)
    until = None if context is None else _tls.call_until(waiter, timeout)
    connect = _connect.create_connection(
        SyncSocket, waiter, address, timeout, source_address, all_errors, happy_eyeballs_delay
    )
    sock = run(connect)
    if context is None:
        return sock
    handshake = _tls.handshake_new(
        waiter,
        SyncSSLSocket._from_inner,
        sock,
        context,
        False,
        server_hostname or address[0],
        _tls.handshake_deadline(waiter, until, ssl_handshake_timeout),
    )
    tls: SyncSSLSocket = run(handshake)
    return tls


@_surface.function
def create_server(
    address: Any,
    *,
    family: int = socket.AF_INET,
    backlog: int | None = None,
    reuse_port: bool = False,
    dualstack_ipv6: bool = False,
) -> SyncSocket:
    return run(
        _listeners.create_server(
            SyncSocket, WAITER, address, family, backlog, reuse_port, dualstack_ipv6
        )
    )


# -- TLS ------------------------------------------------------------------------


class SyncSSLSocket(_tls.TLSMethods, SyncSocket):
    """A blocking TLS socket on the same core: the stdlib's ``ssl.SSLSocket``, sharable
    between threads (one reading while another writes).

    Made by ``asocket.sync.wrap_socket(...)`` (no public constructor). Its
    descriptor stays O_NONBLOCK in every mode: each OpenSSL call is non-blocking and
    runs alone on the socket (a lock), and waits happen in ``poll()`` outside it.
    """

    __slots__ = ("_lock", "_pending", "_wire")

    _sock: ssl.SSLSocket
    _pending: bytes | memoryview | None
    _wire: _tls.Wire
    _lock: threading.Lock

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise _tls.no_constructor(type(self))

    @classmethod
    def _from_inner(cls, inner: ssl.SSLSocket, timeout: float | None) -> Self:
        self = cls.__new__(cls)
        self._pending = None
        self._wire = _tls.wire_of(inner)
        self._lock = threading.Lock()
        SyncSocket.__init__(self, inner.family, inner.type, inner.proto, inner.fileno())
        self._sock.detach()  # the base made a raw socket on the fd: the inner one takes its place
        self._sock = inner
        self._gate = Gate(inner)
        self.settimeout(timeout)
        return self

    def _ssl(self, fn: Callable[..., T], /, *args: Any) -> T:
        with self._lock:
            return fn(*args)

    def _init_fd(self) -> None:
        self._gate = Gate(self._sock)
        self._sock.settimeout(0.0)  # O_NONBLOCK in every mode
        self._call = self._call_nonblocking

    def _set_mode(self, timeout: float | None) -> None:
        self._timeout = timeout  # the descriptor stays O_NONBLOCK
        if self._sock.fileno() == -1:
            raise ebadf()

    def _new(self, fd: int) -> SyncSocket:  # type: ignore[override]
        return SyncSocket(self._family, self._sock.type, self._sock.proto, fileno=fd)

    def _real_close(self) -> None:
        _tls.drop_ssl(self._sock)
        super()._real_close()

    def detach(self) -> int:
        _tls.drop_ssl(self._sock)
        return super().detach()

    def _tls(self, reads: bool, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run the TLS engine coroutine ``make()`` makes, through the gate."""
        result: T = self._gate.call(_tls.TLS_READ if reads else None, _run_made, make)
        return result

    def do_handshake(self, block: bool = False) -> None:
        """Perform the TLS handshake (``block`` is accepted and ignored, as the mode rules)."""
        self._tls(False, partial(_tls.do_handshake, WAITER, self))

    def _read_retry(self, event: int, fn: Callable[..., T], /, *args: Any) -> T:
        """After an inline read ``fn(*args)`` said wait for ``event``: the rest of the
        read, through the gate."""
        result: T = self._tls(True, partial(_tls.read_rest, WAITER, self, event, fn, args))
        return result

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        """Receive up to ``buflen`` bytes of plaintext; ``b''`` at the end of the stream
        (close_notify, or a ragged EOF with ``suppress_ragged_eofs``)."""
        recv = self._sock.recv
        with self._lock:
            try:  # the first attempt inline: the usual case costs one SSL call
                return _tls.pump(self, recv, buflen, flags)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, InterruptedError) as exc:
                event = _tls.wait_for(self, exc)
        return self._read_retry(event, recv, buflen, flags)

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        """Receive plaintext into ``buffer`` (up to ``nbytes``, or its size); return the count."""
        records_into = _tls.records_into
        with self._lock:
            try:
                return _tls.pump(self, records_into, self, buffer, nbytes, flags)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, InterruptedError) as exc:
                event = _tls.wait_for(self, exc)
        return self._read_retry(event, records_into, self, buffer, nbytes, flags)

    def read(self, len: int = 1024, buffer: Any = None) -> Any:
        """The stdlib's legacy ``read``: up to ``len`` bytes (or into ``buffer``: the count);
        ``ValueError`` once closed or unwrapped."""
        args = (len,) if buffer is None else (len, buffer)
        read = self._sock.read
        message = _tls.READ_TIMEOUT
        return self._tls(
            True,
            partial(_tls.call, WAITER, self, _tls.TLS_READ, message, _tls.pump, self, read, *args),
        )

    def write(self, data: Any) -> int:
        """The stdlib's legacy ``write``: ``send`` without flags; ``ValueError`` once closed."""
        if self._sock._sslobj is None:  # type: ignore[attr-defined]
            return self._sock.write(data)  # the stdlib's ValueError
        return self._tls(False, partial(_tls.send, WAITER, self, data))

    def send(self, data: Any, flags: int = 0) -> int:
        """Send plaintext; return the count sent. A write interrupted earlier (timeout,
        cancellation, non-blocking mode) is finished first; see the TLS docs."""
        if not flags:
            with self._lock:
                n = _tls.try_send(self, data)
            if n is not None:
                return n
        return self._tls(False, partial(_tls.send, WAITER, self, data, flags))

    def sendall(self, data: Any, flags: int = 0) -> None:
        """Send all of ``data``; the timeout covers the whole call. Interrupted, it never
        corrupts the stream: the next write finishes the TLS record it left."""
        if not flags and _tls.small(data):
            with self._lock:
                n = _tls.try_send(self, data)
            if n == len(data):
                return
        self._tls(False, partial(_tls.sendall, WAITER, self, data, flags))

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """Send a file through TLS (read in blocks and sent; no kernel TLS); return the
        byte count. As the stdlib: ``ValueError`` in non-blocking mode, the timeout per block."""
        return self._tls(False, partial(_tls.sendfile, WAITER, self, file, offset, count))

    def unwrap(self) -> SyncSocket:
        """Shut TLS down (close_notify both ways, under the mode); return the plain
        socket, which keeps the descriptor and the mode. This socket is then closed."""
        self._tls(False, partial(_tls.unwrap, WAITER, self))
        family, type_, proto, timeout = (
            self._family,
            self._sock.type,
            self._sock.proto,
            self._timeout,
        )
        plain = SyncSocket(family, type_, proto, self.detach())
        plain.settimeout(timeout)
        return plain

    def connect(self, address: Any, /) -> None:
        """Connect a socket wrapped unconnected, then (``do_handshake_on_connect``) do the
        handshake, as the stdlib's ``SSLSocket.connect``."""
        self._tls(False, partial(_tls.connect, WAITER, self, address, False))

    def connect_ex(self, address: Any, /) -> int:
        """As ``connect()``, but return the connect's errno instead of raising (0: done)."""
        return self._tls(False, partial(_tls.connect, WAITER, self, address, True))

    def accept(self) -> tuple[SyncSSLSocket, Any]:
        """Accept a connection and wrap it server-side (handshake as this socket's)."""
        conn, address = SyncSocket.accept(self)
        tls = wrap_socket(
            conn,
            self.context,
            server_side=True,
            do_handshake_on_connect=self.do_handshake_on_connect,
            suppress_ragged_eofs=self.suppress_ragged_eofs,
        )
        return tls, address


SyncSSLSocket.__module__ = "asocket.sync"
SyncSSLSocket.__qualname__ = SyncSSLSocket.__name__ = "SSLSocket"


@_surface.function
def wrap_socket(
    sock: SyncSocket,
    context: ssl.SSLContext,
    *,
    server_side: bool = False,
    server_hostname: str | None = None,
    do_handshake_on_connect: bool = True,
    suppress_ragged_eofs: bool = True,
    session: ssl.SSLSession | None = None,
) -> SyncSSLSocket:
    tls, handshake = _tls.wrap(
        SyncSSLSocket._from_inner,
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
            tls.do_handshake()
        except BaseException:
            tls.close()
            raise
    return tls
