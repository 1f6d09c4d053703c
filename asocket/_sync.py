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
from collections.abc import Callable, Coroutine, Iterable
from functools import partial
from typing import Any, Protocol, TypeVar

from . import _connect, _engine as e, _listeners, _ops as ops, _reduction, _surface
from ._gate import Gate
from ._socket import RawSocket, SocketBase
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
            wait = e.verdict(self, op, args, exc)
        if wait is None:  # EINTR: the rest of the attempt
            result = e.attempt(self, op, fn, args)
            if not isinstance(result, e.Wait):
                return result
            wait = result
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

    def recv(self, bufsize: int, flags: int = 0, /) -> bytes:
        return self._call(ops.RECV, self._sock.recv, bufsize, flags)

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

    def send(self, data: Any, flags: int = 0, /) -> int:
        return self._call(ops.SEND, self._sock.send, data, flags)

    def sendall(self, data: Any, flags: int = 0, /) -> None:
        self._drive(partial(e.sendall, WAITER, self, data, flags))

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


@_surface.function
def create_connection(
    address: tuple[Any, ...],
    timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
    source_address: Any = None,
    *,
    all_errors: bool = False,
    happy_eyeballs_delay: float | None = _connect.DELAY,
) -> SyncSocket:
    return run(
        _connect.create_connection(
            SyncSocket, WAITER, address, timeout, source_address, all_errors, happy_eyeballs_delay
        )
    )


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
