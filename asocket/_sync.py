"""The sync face's socket: the core driven by a one-step trampoline, no event loop.

In blocking mode the descriptor is blocking and a call is one syscall, as in
the stdlib. In timeout and non-blocking modes it is O_NONBLOCK: the call is
tried inline first and only on ``BlockingIOError`` does the core's coroutine
run, its waiter blocking in ``poll()``. ``close()`` from another thread wakes
threads blocked on the socket (in ``poll`` or in the kernel) by shutting it
down first; they then raise ``OSError(EBADF)``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Coroutine, Iterable
from functools import partial
from typing import Any, TypeVar

from . import _connect, _server, _waiter as w
from ._core import SocketCore, _RawSocket, close_fd
from ._poll import WAITER
from ._waiter import Waiter, ebadf

T = TypeVar("T")


def _empty(result: Any) -> bool:
    """A read's result that says end of file: ``b''``, 0, or a tuple that starts so."""
    return not (result[0] if type(result) is tuple else result)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a core coroutine to its end in one step.

    Raises ``RuntimeError`` if it suspends: the sync waiter must block, never yield.
    """
    try:
        coro.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coro.close()
    raise RuntimeError("asocket.sync: a core coroutine suspended; the sync face never yields")


class SyncSocket(SocketCore):
    """A blocking socket with the stdlib's semantics, sharable between threads.

    ``asocket.sync.socket(family=-1, type=-1, proto=-1, fileno=None)``: as
    ``socket.socket``; ``fileno`` adopts an existing descriptor.
    """

    __slots__ = ("_blocked", "_closed", "_closing", "_created", "_io_refs", "_pending")

    def __init__(
        self,
        family: int = -1,
        type: int = -1,
        proto: int = -1,
        fileno: int | None = None,
    ) -> None:
        self._blocked: list[None] = []  # one entry per thread inside a blocking call
        self._closing = False
        self._closed = False
        self._io_refs = 0
        self._created = False
        self._pending: list[int] = []  # a detached fd that the last blocked thread closes
        super().__init__(family, type, proto, fileno)
        self._created = True

    # -- hooks ----------------------------------------------------------------

    def _waiter(self) -> Waiter:
        return WAITER

    def _set_mode(self, timeout: float | None) -> None:
        # As the stdlib: blocking mode gets a blocking descriptor, the others O_NONBLOCK.
        self._timeout = timeout  # recorded even if the socket is closed (EBADF below)
        sock = self._sock
        if timeout is None and not self._created and sock.gettimeout() is None:
            # ...except in the constructor, which (as the stdlib's) leaves the flag alone in
            # blocking mode: a new descriptor is blocking, and an adopted one keeps the flag its
            # owner set; fromfd()'s dup shares that flag with the original, which must not change.
            # (A raw socket not in blocking mode here met the stdlib's own default timeout.)
            return
        sock.settimeout(None if timeout is None else 0.0)

    def _call(self, op: w.Op | None, fn: Callable[..., T], *args: Any) -> T:
        """Call ``fn(*args)`` with the mode's semantics (``op=None``: ``fn`` is a whole
        core call, already waiting as it must)."""
        timeout = self._timeout
        if timeout is not None and op is not None:  # O_NONBLOCK: try inline, wait in the core
            try:
                return fn(*args)
            except BlockingIOError:
                if timeout == 0.0:
                    raise
            fn, args = run, (self._io_wait(op, fn, args),)
        # The call may block, in the kernel or in poll(): let close() know, so it can wake it.
        blocked = self._blocked
        blocked.append(None)
        try:
            if self._closing and self._sock.fileno() != -1:
                # close() is under way in another thread and may have looked at _blocked
                # before the append above: do not start a call it would not wake.
                if fn is run:
                    args[0].close()  # a core coroutine that will never run
                raise ebadf()
            result = fn(*args)
        except OSError:
            if self._closing:  # woken by close(): EPIPE, EINVAL, ... mean EBADF here
                raise ebadf() from None
            raise
        finally:
            blocked.pop()
            if self._closing and not blocked:
                self._close_pending()
        if self._closing and op is not None and op.event == w.READ and _empty(result):
            raise ebadf()  # the "end of file" a shutdown by close() produced
        return result

    def _drive(self, coro: Coroutine[Any, Any, T]) -> T:
        result: T = self._call(None, run, coro)
        return result

    # -- closing --------------------------------------------------------------

    def close(self) -> None:
        """Close the socket; with ``makefile()`` objects open, once the last of them closes.

        A thread blocked on this socket wakes with ``OSError(EBADF)``.
        """
        self._closed = True
        if self._io_refs <= 0:
            self._real_close()

    def _real_close(self) -> None:
        sock = self._sock
        if sock.fileno() == -1:
            return
        self._closing = True
        if self._blocked:
            # Keep the fd number until the last blocked thread leaves: a woken thread still
            # in poll() (or about to enter it) must not watch a new socket that reuses it.
            # Detached first, so a woken thread already finds fileno() == -1.
            fd = sock.detach()
            if fd != -1:  # -1: a concurrent close() detached it first
                # Linux wakes a thread blocked in recv/accept/poll on shutdown, not on close.
                # (Nobody else closes the fd before it is in _pending.)
                try:
                    waker = _RawSocket(fileno=fd)
                except OSError:
                    pass
                else:
                    try:
                        waker.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    waker.detach()
                self._pending.append(fd)
            if not self._blocked:
                self._close_pending()
            return
        sock.close()

    def _close_pending(self) -> None:
        try:
            fd = self._pending.pop()
        except IndexError:  # another thread took it
            return
        close_fd(fd)

    def _decref_socketios(self) -> None:
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._closed:
            self.close()

    def detach(self) -> int:
        """Close the socket object without closing the descriptor, and return the descriptor."""
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
        """A file object on the socket, as ``socket.socket.makefile`` (on ``socket.SocketIO``)."""
        return _RawSocket.makefile(  # type: ignore[call-overload]
            self,
            mode,
            buffering,
            encoding=encoding,
            errors=errors,
            newline=newline,
        )

    # -- calls ----------------------------------------------------------------

    def accept(self) -> tuple[SyncSocket, Any]:
        """Wait for a connection; return ``(socket, address)``.

        The new socket gets the module's default timeout, as in the stdlib.
        """
        fd, address = self._call(w.ACCEPT, self._sock._accept)  # type: ignore[attr-defined]
        sock = self._new(fd)
        if sock._timeout is None and self._timeout:
            # As the stdlib (bpo-7995): where the new descriptor inherits O_NONBLOCK from
            # the listening one (BSD, macOS), blocking mode must clear it.
            sock.setblocking(True)
        return sock, address

    def bind(self, address: Any, /) -> None:
        """Bind to ``address``; a host name is resolved first."""
        if self._needs_resolution(address):
            address = run(self._resolve(address))
        self._sock.bind(address)

    def connect(self, address: Any, /) -> None:
        """Connect to ``address``; raises ``OSError`` on failure, ``TimeoutError`` on timeout."""
        self._drive(self._connect(address, False))

    def connect_ex(self, address: Any, /) -> int:
        """Like ``connect()``, but return the errno instead of raising (0: connected)."""
        return self._drive(self._connect(address, True))

    def recv(self, bufsize: int, flags: int = 0, /) -> bytes:
        """Receive up to ``bufsize`` bytes; ``b''`` means the peer closed its side."""
        return self._call(w.RECV, self._sock.recv, bufsize, flags)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """Receive into ``buffer`` (up to ``nbytes``, or its size); return the count."""
        return self._call(w.RECV_INTO, self._sock.recv_into, buffer, nbytes, flags)

    def recvfrom(self, bufsize: int, flags: int = 0, /) -> tuple[bytes, Any]:
        """Receive up to ``bufsize`` bytes; return ``(data, address)``."""
        return self._call(w.RECVFROM, self._sock.recvfrom, bufsize, flags)

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        """Receive into ``buffer``; return ``(nbytes, address)``."""
        return self._call(w.RECVFROM_INTO, self._sock.recvfrom_into, buffer, nbytes, flags)

    def recvmsg(
        self, bufsize: int, ancbufsize: int = 0, flags: int = 0, /
    ) -> tuple[bytes, list[tuple[int, int, bytes]], int, Any]:
        """Receive data and ancillary data; return ``(data, ancdata, msg_flags, address)``."""
        return self._call(w.RECVMSG, self._sock.recvmsg, bufsize, ancbufsize, flags)

    def recvmsg_into(
        self, buffers: Iterable[Any], ancbufsize: int = 0, flags: int = 0, /
    ) -> tuple[int, list[tuple[int, int, bytes]], int, Any]:
        """Like ``recvmsg()``, into ``buffers``: ``(nbytes, ancdata, msg_flags, address)``."""
        return self._call(w.RECVMSG_INTO, self._sock.recvmsg_into, buffers, ancbufsize, flags)

    def send(self, data: Any, flags: int = 0, /) -> int:
        """Send ``data``; return how many bytes were sent (possibly fewer than all)."""
        return self._call(w.SEND, self._sock.send, data, flags)

    def sendall(self, data: Any, flags: int = 0, /) -> None:
        """Send all of ``data``; the timeout covers the whole call."""
        self._drive(self._sendall(data, flags))

    def sendto(self, data: Any, /, *args: Any) -> int:
        """``sendto(data, address)`` or ``sendto(data, flags, address)``; return the count."""
        if args and self._needs_resolution(args[-1]):
            args = (*args[:-1], run(self._resolve(args[-1])))
        return self._call(w.SENDTO, self._sock.sendto, data, *args)

    def sendmsg(
        self,
        buffers: Iterable[Any],
        ancdata: Iterable[tuple[int, int, Any]] = (),
        flags: int = 0,
        address: Any = None,
        /,
    ) -> int:
        """Send data and ancillary data (e.g. ``SCM_RIGHTS``); return the count."""
        if address is None:
            return self._call(w.SENDMSG, self._sock.sendmsg, buffers, ancdata, flags)
        if self._needs_resolution(address):
            address = run(self._resolve(address))
        return self._call(w.SENDMSG, self._sock.sendmsg, buffers, ancdata, flags, address)

    if hasattr(socket.socket, "sendmsg_afalg"):  # Linux

        def sendmsg_afalg(self, *args: Any, **kwargs: Any) -> int:
            """``sendmsg_afalg([msg], *, op[, iv[, assoclen[, flags]]])`` for AF_ALG sockets."""
            return self._call(w.SENDMSG, partial(self._sock.sendmsg_afalg, *args, **kwargs))

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """Send a file (``os.sendfile`` where possible); return the bytes sent."""
        return self._drive(self._sendfile(file, offset, count))


# The stdlib's repr names the class as users spell it: <asocket.sync.socket fd=...>.
SyncSocket.__module__ = "asocket.sync"
SyncSocket.__qualname__ = "socket"


# -- module functions ---------------------------------------------------------


def socketpair(
    family: int | None = None, type: int = socket.SOCK_STREAM, proto: int = 0
) -> tuple[SyncSocket, SyncSocket]:
    """Two connected sockets (``socket.socketpair``: AF_UNIX, or AF_INET where there is
    none), in the default timeout mode."""
    return SyncSocket._pair(family, type, proto)


def fromfd(fd: int, family: int, type: int, proto: int = 0) -> SyncSocket:
    """A socket on a duplicate of ``fd`` (the original stays open)."""
    return SyncSocket._fromfd(fd, family, type, proto)


def from_socket(sock: socket.socket) -> SyncSocket:
    """Adopt a stdlib ``socket.socket``: it is detached and the new socket owns its
    descriptor and keeps its timeout."""
    return SyncSocket._adopt(sock)


def create_connection(
    address: tuple[Any, ...],
    timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
    source_address: Any = None,
    *,
    all_errors: bool = False,
    happy_eyeballs_delay: float | None = _connect.DELAY,
) -> SyncSocket:
    """Connect to ``(host, port)`` and return the connected socket.

    As ``socket.create_connection``, with Happy Eyeballs (RFC 8305): the
    addresses ``getaddrinfo`` returns are interleaved by family and raced, a
    new attempt starting every ``happy_eyeballs_delay`` seconds (0.25) or as
    soon as one fails; the first to connect wins and the others are closed.
    ``happy_eyeballs_delay=None`` tries one address at a time, in order.
    ``timeout`` (else the default timeout) bounds the whole call and is then
    set on the socket. ``source_address`` is bound first. Raises the last
    attempt's error (``TimeoutError('timed out')`` at the deadline), or with
    ``all_errors=True`` an ``ExceptionGroup`` of every attempt's error.
    """
    return run(
        _connect.create_connection(
            SyncSocket, WAITER, address, timeout, source_address, all_errors, happy_eyeballs_delay
        )
    )


def create_server(
    address: Any,
    *,
    family: int = socket.AF_INET,
    backlog: int | None = None,
    reuse_port: bool = False,
    dualstack_ipv6: bool = False,
) -> SyncSocket:
    """A TCP socket bound to ``address`` and listening; see ``socket.create_server``."""
    return run(
        _server.create_server(SyncSocket, address, family, backlog, reuse_port, dualstack_ipv6)
    )
