"""The async face: ``asocket.socket``, its module functions, and the loop waiter choice.

Every awaitable method is one line on top of the core. The descriptor is
always O_NONBLOCK; the mode lives in the object. Each call tries the syscall
first and waits on the running loop only when it would block, through the
loop's waiter: readiness (``add_reader``) where the loop has it, completion
(``sock_*``) where it does not.
"""

from __future__ import annotations

import array
import asyncio
import socket
import weakref
from collections.abc import Iterable
from functools import partial
from typing import Any, Self

from . import _connect, _resolve, _server, _waiter as w
from ._core import SocketCore, _socketpair, close_fd
from ._loop_completion import CompletionWaiter
from ._loop_readiness import ReadinessWaiter
from ._waiter import AddrInfo, Waiter, ebadf

LoopWaiter = ReadinessWaiter | CompletionWaiter

_MSG_WAITALL = int(getattr(socket, "MSG_WAITALL", 0))

_waiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopWaiter] = (
    weakref.WeakKeyDictionary()
)


def _has_readiness(loop: asyncio.AbstractEventLoop, fd: int | None) -> bool:
    """Whether ``loop`` has ``add_reader``: tried on a scratch socket, or on ``fd``
    (which no waiter of this loop watches yet) when the fd table is full."""
    pair: tuple[socket.socket, socket.socket] | None = None
    try:
        pair = _socketpair()
        probe = pair[0].fileno()
    except OSError:
        if fd is None:
            raise
        probe = fd
    try:
        loop.add_reader(probe, _noop)
    except NotImplementedError:
        return False
    else:
        loop.remove_reader(probe)
        return True
    finally:
        if pair is not None:
            pair[0].close()
            pair[1].close()


def _noop() -> None:  # pragma: no cover - never called
    pass


def waiter_for(loop: asyncio.AbstractEventLoop, fd: int | None = None) -> LoopWaiter:
    """The waiter for ``loop``: readiness if it has ``add_reader``, else completion."""
    waiter = _waiters.get(loop)
    if waiter is None:
        readiness = _has_readiness(loop, fd)
        waiter = ReadinessWaiter(loop) if readiness else CompletionWaiter(loop)
        _waiters[loop] = waiter
    return waiter


def _running_waiter() -> LoopWaiter:
    return waiter_for(asyncio.get_running_loop())


class AsyncSocket(SocketCore):
    """An awaitable socket with the stdlib's blocking, non-blocking and timeout modes.

    ``asocket.socket(family=-1, type=-1, proto=-1, fileno=None)``: as
    ``socket.socket``; ``fileno`` adopts an existing descriptor. Its I/O
    methods are coroutines and need a running event loop; the others return
    at once. It may be created outside a loop and used inside one.
    """

    __slots__ = ("_w",)

    def __init__(
        self,
        family: int = -1,
        type: int = -1,
        proto: int = -1,
        fileno: int | None = None,
    ) -> None:
        self._w: LoopWaiter | None = None
        super().__init__(family, type, proto, fileno)

    # -- hooks ----------------------------------------------------------------

    def _waiter(self) -> Waiter:
        loop = asyncio.get_running_loop()
        waiter = self._w
        if waiter is None or waiter.loop is not loop:
            if waiter is not None:  # moved to another loop: let the old one go
                waiter.forget(self._fd(), None)
            waiter = self._w = waiter_for(loop, self._sock.fileno())
        return waiter

    def _set_mode(self, timeout: float | None) -> None:
        self._timeout = timeout
        sock = self._sock
        if sock.gettimeout() != 0.0:
            sock.setblocking(False)  # the descriptor is always O_NONBLOCK on this face
        elif sock.fileno() == -1:
            raise ebadf()

    # -- closing --------------------------------------------------------------

    @property
    def _closed(self) -> bool:  # read by the stdlib's __repr__ ("[closed]")
        return self._sock.fileno() == -1

    def close(self) -> None:
        """Close the socket. Tasks waiting on it wake with ``OSError(EBADF)``.

        The descriptor leaves the event loop before the OS closes it, so a
        reused fd number never gets a stale wake-up.
        """
        waiter = self._w
        if waiter is None:
            self._sock.close()
            return
        self._w = None
        fd = self._sock.detach()
        if fd != -1:
            waiter.forget(fd, partial(close_fd, fd))

    def detach(self) -> int:
        """Close the socket object without closing the descriptor, and return the descriptor."""
        waiter, self._w = self._w, None
        fd = self._sock.detach()
        if waiter is not None and fd != -1:
            waiter.forget(fd, None)
        return fd

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    # -- awaitable calls ------------------------------------------------------

    async def accept(self) -> tuple[AsyncSocket, Any]:
        """Wait for a connection; return ``(socket, address)``.

        The new socket gets the module's default timeout, as in the stdlib.
        """
        return await self._accept()

    async def bind(self, address: Any, /) -> None:
        """Bind to ``address``; a host name is resolved without blocking the loop."""
        await self._bind(address)

    async def connect(self, address: Any, /) -> None:
        """Connect to ``address``; raises ``OSError`` on failure, ``TimeoutError`` on timeout."""
        await self._connect(address, False)

    async def connect_ex(self, address: Any, /) -> int:
        """Like ``connect()``, but return the errno instead of raising (0: connected)."""
        return await self._connect(address, True)

    async def recv(self, bufsize: int, flags: int = 0, /) -> bytes:
        """Receive up to ``bufsize`` bytes; ``b''`` means the peer closed its side."""
        if flags and self._timeout is None and isinstance(flags, int) and flags & _MSG_WAITALL:
            return await self._recv_waitall(bufsize, flags)
        return await self._io(w.RECV, self._sock.recv, bufsize, flags)

    async def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """Receive into ``buffer`` (up to ``nbytes``, or its size); return the count."""
        if flags and self._timeout is None and isinstance(flags, int) and flags & _MSG_WAITALL:
            return await self._recv_into_waitall(buffer, nbytes, flags)
        return await self._io(w.RECV_INTO, self._sock.recv_into, buffer, nbytes, flags)

    async def recvfrom(self, bufsize: int, flags: int = 0, /) -> tuple[bytes, Any]:
        """Receive up to ``bufsize`` bytes; return ``(data, address)``."""
        return await self._io(w.RECVFROM, self._sock.recvfrom, bufsize, flags)

    async def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        """Receive into ``buffer``; return ``(nbytes, address)``."""
        return await self._io(w.RECVFROM_INTO, self._sock.recvfrom_into, buffer, nbytes, flags)

    async def recvmsg(
        self, bufsize: int, ancbufsize: int = 0, flags: int = 0, /
    ) -> tuple[bytes, list[tuple[int, int, bytes]], int, Any]:
        """Receive data and ancillary data; return ``(data, ancdata, msg_flags, address)``."""
        return await self._io(w.RECVMSG, self._sock.recvmsg, bufsize, ancbufsize, flags)

    async def recvmsg_into(
        self, buffers: Iterable[Any], ancbufsize: int = 0, flags: int = 0, /
    ) -> tuple[int, list[tuple[int, int, bytes]], int, Any]:
        """Like ``recvmsg()``, into ``buffers``: ``(nbytes, ancdata, msg_flags, address)``."""
        return await self._io(w.RECVMSG_INTO, self._sock.recvmsg_into, buffers, ancbufsize, flags)

    async def send(self, data: Any, flags: int = 0, /) -> int:
        """Send ``data``; return how many bytes were sent (possibly fewer than all)."""
        return await self._io(w.SEND, self._sock.send, data, flags)

    async def sendall(self, data: Any, flags: int = 0, /) -> None:
        """Send all of ``data``; the timeout covers the whole call.

        If cancelled, no byte is sent after the cancellation; how many were
        sent before it is unknown, as after a timeout.
        """
        await self._sendall(data, flags)

    async def sendto(self, data: Any, /, *args: Any) -> int:
        """``sendto(data, address)`` or ``sendto(data, flags, address)``; return the count."""
        if args and self._needs_resolution(args[-1]):
            args = (*args[:-1], await self._resolve(args[-1]))
        return await self._io(w.SENDTO, self._sock.sendto, data, *args)

    async def sendmsg(
        self,
        buffers: Iterable[Any],
        ancdata: Iterable[tuple[int, int, Any]] = (),
        flags: int = 0,
        address: Any = None,
        /,
    ) -> int:
        """Send data and ancillary data (e.g. ``SCM_RIGHTS``); return the count."""
        if address is None:
            return await self._io(w.SENDMSG, self._sock.sendmsg, buffers, ancdata, flags)
        address = await self._resolve(address)
        return await self._io(w.SENDMSG, self._sock.sendmsg, buffers, ancdata, flags, address)

    if hasattr(socket.socket, "sendmsg_afalg"):  # Linux

        async def sendmsg_afalg(self, *args: Any, **kwargs: Any) -> int:
            """``sendmsg_afalg([msg], *, op[, iv[, assoclen[, flags]]])`` for AF_ALG sockets."""
            return await self._io(w.SENDMSG, partial(self._sock.sendmsg_afalg, *args, **kwargs))

    async def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        """Send a file (``os.sendfile`` where possible); return the bytes sent.

        As the stdlib: ``ValueError`` for a non-blocking socket, and the
        timeout applies to each wait rather than to the whole call.
        """
        return await self._sendfile(file, offset, count)


# The stdlib's repr names the class as users spell it: <asocket.socket fd=...>.
AsyncSocket.__module__ = "asocket"
AsyncSocket.__qualname__ = "socket"


# -- module functions ---------------------------------------------------------


def socketpair(
    family: int | None = None, type: int = socket.SOCK_STREAM, proto: int = 0
) -> tuple[AsyncSocket, AsyncSocket]:
    """Two connected sockets (``socket.socketpair``: AF_UNIX, or AF_INET where there is
    none), in the default timeout mode."""
    return AsyncSocket._pair(family, type, proto)


def fromfd(fd: int, family: int, type: int, proto: int = 0) -> AsyncSocket:
    """A socket on a duplicate of ``fd`` (the original stays open)."""
    return AsyncSocket._fromfd(fd, family, type, proto)


def from_socket(sock: socket.socket) -> AsyncSocket:
    """Adopt a stdlib ``socket.socket``: it is detached and the new socket owns its
    descriptor and keeps its timeout."""
    return AsyncSocket._adopt(sock)


async def create_connection(
    address: tuple[Any, ...],
    timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT,  # type: ignore[attr-defined]
    source_address: Any = None,
    *,
    all_errors: bool = False,
    happy_eyeballs_delay: float | None = _connect.DELAY,
) -> AsyncSocket:
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
    return await _connect.create_connection(
        AsyncSocket,
        _running_waiter(),
        address,
        timeout,
        source_address,
        all_errors,
        happy_eyeballs_delay,
    )


async def create_server(
    address: Any,
    *,
    family: int = socket.AF_INET,
    backlog: int | None = None,
    reuse_port: bool = False,
    dualstack_ipv6: bool = False,
) -> AsyncSocket:
    """A TCP socket bound to ``address`` and listening; see ``socket.create_server``."""
    return await _server.create_server(
        AsyncSocket, address, family, backlog, reuse_port, dualstack_ipv6
    )


async def getaddrinfo(
    host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
) -> list[AddrInfo]:
    """``socket.getaddrinfo`` without blocking the loop (literals are answered inline)."""
    return await _resolve.getaddrinfo(
        _running_waiter().getaddrinfo, host, port, family, type, proto, flags
    )


async def _in_thread(fn: Any, *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


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
