"""The semantics of a socket, written once for both faces.

``SocketCore`` wraps a stdlib ``socket.socket`` (the *raw* socket, which does
the syscalls) and owns everything the stdlib's C socket module decides: the
timeout mode (``None`` / ``0.0`` / ``t``), the deadline, EINTR and
false-positive retries, partial sends, connect completion, accept's timeout,
sendfile, address resolution and the closed state (``EBADF``).

Multi-step calls wait in the middle, so they are ``async def`` and await an
injected :class:`~asocket._waiter.Waiter`; this module never imports
``asyncio``, ``select`` or ``threading``. The async face awaits these
coroutines on its loop; the sync face drives them with a one-step trampoline,
its waiter blocking in ``poll()`` instead of suspending.

Each face supplies three hooks: ``_waiter()`` (how to wait), ``_set_mode(t)``
(what the raw descriptor's blocking flag must be for mode ``t``) and ``close``.
"""

from __future__ import annotations

import _socket
import errno
import io
import os
import socket
import sys
import warnings
from collections.abc import Callable
from typing import Any, NoReturn, Self, TypeVar

from . import _resolve, _timeouts
from ._waiter import (
    ACCEPT,
    CONNECT,
    RECV,
    RECV_INTO,
    SENDALL,
    SENDFILE,
    WRITE,
    Op,
    Waiter,
    ebadf,
)

T = TypeVar("T")

# The stdlib's class and helpers, bound at import: a program or test harness may
# replace ``socket.socket`` with a face's class (as gevent-style patching does).
_RawSocket = socket.socket
_dup = socket.dup
# The C-level socketpair: Lib/socket.py's wrapper builds ``socket.socket`` objects.
_socketpair = getattr(_socket, "socketpair", socket.socketpair)
close_fd = _socket.close  # closes a descriptor as the stdlib does (ECONNRESET ignored)

# What a non-blocking connect() reports while the connection proceeds (the C
# module's SOCK_INPROGRESS_ERR); EINTR also means it goes on asynchronously.
# (EAGAIN on a TCP connect means "no free local port": an error, not progress.)
_CONNECTING = frozenset(
    {errno.EWOULDBLOCK if sys.platform == "win32" else errno.EINPROGRESS, errno.EINTR}
)
_UNIX_RETRY_FIRST = 0.001
_UNIX_RETRY_MAX = 0.05
_SOCK_NONBLOCK = getattr(socket, "SOCK_NONBLOCK", 0)
# Plain ints: a test against an IntFlag member costs a Python call.
_MSG_DONTWAIT = int(getattr(socket, "MSG_DONTWAIT", 0))
_SENDFILE_BLOCK = 1 << 30  # as the stdlib: at most 1 GiB per os.sendfile call
_SEND_BLOCK = 8192  # the stdlib's send-loop block for sendfile without os.sendfile
_has_os_sendfile = hasattr(os, "sendfile")
_AF_UNIX = getattr(socket, "AF_UNIX", None)


_probes: dict[int, socket.socket] = {}


def _check_address(family: int, address: Any, ex: bool) -> None:
    """Raise what the stdlib's connect (or connect_ex) raises for a malformed ``address``.

    The C module parses the address before the syscall, so a closed socket of
    the family raises the exact exception and message, or else EBADF.
    """
    probe = _probes.get(family)
    if probe is None:
        try:
            probe = _RawSocket(family, socket.SOCK_STREAM)
        except OSError:
            return
        probe.close()
        _probes[family] = probe
    try:
        if ex:
            probe.connect_ex(address)
        else:
            probe.connect(address)
    except OSError as exc:
        if exc.errno != errno.EBADF:
            raise


def _settle(sock: socket.socket, address: Any) -> None:
    """After a non-blocking connect completes, connect() once more, as a blocking
    connect() leaves the socket: Linux then reports EISCONN to the next connect()."""
    try:
        sock.connect_ex(address)
    except OSError:
        pass


def raise_errno(err: int) -> NoReturn:
    """Raise the ``OSError`` subclass the stdlib raises for ``err`` (ConnectionRefusedError...)."""
    raise OSError(err, os.strerror(err))


class SocketCore:
    """State and semantics shared by ``asocket.socket`` and ``asocket.sync.socket``."""

    __slots__ = ("__weakref__", "_family", "_sock", "_timeout")

    _sock: socket.socket
    _timeout: float | None

    def __init__(
        self,
        family: int = -1,
        type: int = -1,
        proto: int = -1,
        fileno: int | None = None,
    ) -> None:
        raw = _RawSocket(family, type, proto, fileno)
        self._sock = raw
        self._family = int(raw.family)
        self._timeout = None
        timeout = _timeouts.getdefaulttimeout()
        if _SOCK_NONBLOCK and type != -1 and type & _SOCK_NONBLOCK:
            timeout = 0.0  # as the stdlib: SOCK_NONBLOCK means non-blocking mode
        try:
            self._set_mode(timeout)
        except BaseException:
            raw.detach() if fileno is not None else raw.close()
            raise

    # -- face hooks ----------------------------------------------------------

    def _waiter(self) -> Waiter:  # pragma: no cover - abstract
        raise NotImplementedError

    def _set_mode(self, timeout: float | None) -> None:
        """Set ``_timeout``, then put the raw descriptor in the state the mode needs
        (``OSError(EBADF)`` on a closed socket, the mode recorded all the same)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def close(self) -> None:  # pragma: no cover - abstract
        """Close the socket."""
        raise NotImplementedError

    # -- attributes and plain calls -----------------------------------------

    @property
    def family(self) -> socket.AddressFamily:
        """The socket family (``AF_INET``, ``AF_INET6``, ``AF_UNIX``, ...)."""
        return self._sock.family

    @property
    def type(self) -> socket.SocketKind:
        """The socket type (``SOCK_STREAM``, ``SOCK_DGRAM``, ...)."""
        return self._sock.type

    @property
    def proto(self) -> int:
        """The socket protocol."""
        return self._sock.proto

    @property
    def timeout(self) -> float | None:
        """The timeout mode, as ``gettimeout()`` returns it."""
        return self._timeout

    def fileno(self) -> int:
        """Return the socket's file descriptor, or -1 once it is closed."""
        return self._sock.fileno()

    def getsockname(self) -> Any:
        """Return the socket's own address."""
        return self._sock.getsockname()

    def getpeername(self) -> Any:
        """Return the address of the connected peer."""
        return self._sock.getpeername()

    def getsockopt(self, level: int, optname: int, buflen: int | None = None, /) -> Any:
        """Return a socket option, as ``socket.socket.getsockopt``."""
        if buflen is None:
            return self._sock.getsockopt(level, optname)
        return self._sock.getsockopt(level, optname, buflen)

    def setsockopt(
        self, level: int, optname: int, value: Any, optlen: int | None = None, /
    ) -> None:
        """Set a socket option, as ``socket.socket.setsockopt``."""
        if optlen is None:
            self._sock.setsockopt(level, optname, value)
        else:
            self._sock.setsockopt(level, optname, value, optlen)

    def listen(self, *backlog: int) -> None:
        """Enable a server to accept connections (``listen([backlog])``)."""
        self._sock.listen(*backlog)

    def shutdown(self, how: int, /) -> None:
        """Shut down reading (``SHUT_RD``), writing (``SHUT_WR``) or both (``SHUT_RDWR``)."""
        self._sock.shutdown(how)

    def get_inheritable(self) -> bool:
        """Whether the descriptor is inherited by child processes."""
        return self._sock.get_inheritable()

    def set_inheritable(self, inheritable: bool) -> None:
        """Set whether the descriptor is inherited by child processes."""
        self._sock.set_inheritable(inheritable)

    if hasattr(socket.socket, "ioctl"):  # pragma: no cover - Windows

        def ioctl(self, control: int, option: Any) -> Any:
            """Windows ``WSAIoctl``, as ``socket.socket.ioctl``."""
            return self._sock.ioctl(control, option)  # type: ignore[attr-defined]

    # -- modes ----------------------------------------------------------------

    def gettimeout(self) -> float | None:
        """Return the timeout in seconds: ``None`` blocking, ``0.0`` non-blocking."""
        return self._timeout

    def settimeout(self, value: float | None, /) -> None:
        """Set the mode: ``None`` blocking, ``0.0`` non-blocking, ``t > 0`` a timeout.

        Raises ``TypeError``/``ValueError`` as the stdlib does for a bad value,
        ``OSError(EBADF)`` on a closed socket.
        """
        self._set_mode(_timeouts.check(value))

    def setblocking(self, flag: bool, /) -> None:
        """``True``: ``settimeout(None)`` (blocking); ``False``: ``settimeout(0.0)``.

        Raises ``TypeError`` for a value the stdlib refuses (``None``, a float).
        """
        _timeouts.check_blocking(flag)
        self._set_mode(None if flag else 0.0)

    def getblocking(self) -> bool:
        """True unless the socket is in non-blocking mode (``gettimeout() == 0.0``)."""
        return self._timeout != 0.0

    # -- objects --------------------------------------------------------------

    __repr__ = _RawSocket.__repr__

    def __getstate__(self) -> NoReturn:
        raise TypeError("cannot pickle 'socket' object")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def dup(self) -> Self:
        """A new socket of this face on a duplicate of the descriptor, with the same timeout."""
        sock = type(self)(self._family, self._sock.type, self._sock.proto, _dup(self.fileno()))
        sock.settimeout(self._timeout)
        return sock

    def __del__(self) -> None:
        sock = getattr(self, "_sock", None)
        if sock is not None and sock.fileno() != -1:
            warnings.warn(f"unclosed {self!r}", ResourceWarning, stacklevel=2, source=self)
            self.close()

    @classmethod
    def _pair(cls, family: int | None, type: int, proto: int) -> tuple[Self, Self]:
        """``socketpair()`` for this face: two connected sockets in the default mode."""
        if family is None:  # as the stdlib: AF_UNIX where the platform has it
            family = getattr(socket, "AF_UNIX", socket.AF_INET)
        a, b = _socketpair(family, type, proto)
        return cls._adopt(a, keep_timeout=False), cls._adopt(b, keep_timeout=False)

    @classmethod
    def _adopt(cls, sock: socket.socket, keep_timeout: bool = True) -> Self:
        """A socket of this face that takes over ``sock``'s descriptor (``sock`` is
        detached), in ``sock``'s timeout mode or else the default one."""
        timeout = sock.gettimeout()
        new = cls(sock.family, sock.type, sock.proto, sock.detach())
        if keep_timeout:
            new.settimeout(timeout)
        return new

    @classmethod
    def _fromfd(cls, fd: int, family: int, type: int, proto: int) -> Self:
        """``fromfd()`` for this face: a socket on a duplicate of ``fd``."""
        return cls(family, type, proto, _dup(fd))

    def _new(self, fd: int) -> Self:
        """A socket of this face on ``fd``, with the default timeout (as ``accept``)."""
        return type(self)(self._family, self._sock.type, self._sock.proto, fileno=fd)

    # -- the one retry loop ---------------------------------------------------

    async def _io(self, op: Op, fn: Callable[..., T], *args: Any) -> T:
        """Call ``fn(*args)``; while it would block, wait as the mode says and retry.

        Non-blocking mode raises ``BlockingIOError`` at once; timeout mode raises
        ``TimeoutError('timed out')`` at the deadline (computed once per call).
        A wake-up that still finds ``EWOULDBLOCK`` (another task was served
        first) waits again with the time left. EINTR is retried (PEP 475).
        """
        while True:
            try:
                return fn(*args)
            except InterruptedError:
                continue
            except BlockingIOError:
                if self._timeout == 0.0 or self._dontwait(op, args):
                    raise
            return await self._io_wait(op, fn, args)

    async def _io_wait(self, op: Op, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """The rest of :meth:`_io` once ``fn`` would block: wait, retry, until it is done."""
        waiter, deadline = self._begin_wait()
        if waiter.has_twin(op, args):
            result: T = await waiter.complete(op, self._sock, args, deadline)
            return result
        while True:
            await waiter.wait(self._fd(), op.event, deadline)
            while True:
                try:
                    return fn(*args)
                except InterruptedError:
                    continue
                except BlockingIOError:  # a false positive: another task was served first
                    break

    def _begin_wait(self) -> tuple[Waiter, float | None]:
        """The face's waiter and, in timeout mode, the deadline: now + timeout."""
        waiter = self._waiter()
        timeout = self._timeout
        return waiter, None if timeout is None else waiter.clock() + timeout

    def _needs_resolution(self, address: Any) -> bool:
        return _resolve.needs_resolution(self._family, address)

    def _dontwait(self, op: Op, args: tuple[Any, ...]) -> bool:
        """MSG_DONTWAIT in blocking mode: the stdlib's blocking call raises at once.

        (In timeout mode the stdlib polls before the call, so it waits all the same.)
        """
        return self._timeout is None and bool(op.flags(args) & _MSG_DONTWAIT)

    def _fd(self) -> int:
        fd = self._sock.fileno()
        if fd == -1:
            raise ebadf()
        return fd

    async def _resolve(self, address: Any) -> Any:
        if not self._needs_resolution(address):
            return address
        sock = self._sock
        return await _resolve.resolve(
            self._family, sock.type, sock.proto, address, self._waiter().getaddrinfo
        )

    # -- multi-step semantics -------------------------------------------------

    async def _accept(self) -> tuple[Self, Any]:
        fd, address = await self._io(ACCEPT, self._sock._accept)  # type: ignore[attr-defined]
        return self._new(fd), address

    async def _bind(self, address: Any) -> None:
        self._sock.bind(await self._resolve(address))

    async def _connect(self, address: Any, ex: bool, until: float | None = None) -> int:
        """``connect`` (``ex=False``: raise) or ``connect_ex`` (``ex=True``: return the errno).

        ``until``: a deadline that ends the wait earlier than the mode's would.
        """
        address = await self._resolve(address)
        sock = self._sock
        timeout = self._timeout
        waiter: Waiter | None = None
        deadline: float | None = None
        if timeout != 0.0:
            waiter, deadline = self._begin_wait()
            if until is not None and (deadline is None or until < deadline):
                deadline = until
            # (Not for AF_UNIX: asyncio's sock_connect takes a full backlog's EAGAIN for
            # "in progress" and reports a connection that never happened.)
            if self._family != _AF_UNIX and waiter.has_twin(CONNECT, (address,)):
                # Completion loops connect themselves (ConnectEx needs a fresh socket),
                # so the stdlib's own checks of the address run on a probe first.
                _check_address(self._family, address, ex)
                try:
                    await waiter.complete(CONNECT, sock, (address,), deadline)
                except TimeoutError:
                    if ex:
                        return errno.EWOULDBLOCK
                    raise
                except OSError as exc:
                    if exc.errno is None or type(exc) is socket.gaierror:
                        raise
                    if ex:
                        return exc.errno
                    raise_errno(exc.errno)  # the stdlib's message, not the loop's
                if timeout is None:
                    _settle(sock, address)
                return 0
        # connect() and connect_ex() parse the address and name themselves in errors.
        try:
            if ex:
                err = sock.connect_ex(address)
            else:
                sock.connect(address)
                err = 0
        except (BlockingIOError, InterruptedError) as exc:
            err = exc.errno or errno.EINPROGRESS
        if err == errno.EAGAIN and timeout is None and self._family == _AF_UNIX:
            # A full Unix backlog: a blocking connect() sleeps until there is room.
            # There is no readiness event for that, so retry after a growing sleep.
            delay = _UNIX_RETRY_FIRST
            while err == errno.EAGAIN:
                assert waiter is not None
                await waiter.sleep(delay)
                delay = min(delay * 2, _UNIX_RETRY_MAX)
                err = sock.connect_ex(address)
        if err == 0:  # (EISCONN here is an error: connect() on a connected socket)
            return 0
        # Timeout mode raises a Unix EAGAIN at once, as the stdlib does.
        if waiter is None or err not in _CONNECTING:
            if ex:
                return err
            raise_errno(err)
        try:
            await waiter.wait(self._fd(), WRITE, deadline)
        except TimeoutError:
            if ex:  # the stdlib's connect_ex reports a timeout as EWOULDBLOCK
                return errno.EWOULDBLOCK
            raise
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err == 0 or err == errno.EISCONN:
            if timeout is None:
                _settle(sock, address)
            return 0
        if ex:
            return err
        raise_errno(err)

    def _connect_status(self) -> int | None:
        """A non-blocking connect under way, after a wake-up: 0 once connected, the errno
        it failed with, or None while it still proceeds (the wake-up was early)."""
        sock = self._sock
        err: int = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            return err
        try:
            sock.getpeername()
        except OSError as exc:
            return None if exc.errno == errno.ENOTCONN else exc.errno
        return 0

    def _connected(self, address: Any, timeout: float | None) -> None:
        """Enter the mode ``timeout`` after a non-blocking connect to ``address`` succeeded,
        leaving the socket as a connect() in that mode would."""
        self.settimeout(timeout)
        if timeout is None:
            _settle(self._sock, address)

    async def _sendall(self, data: Any, flags: int) -> None:
        sock = self._sock
        waiter: Waiter | None = None
        deadline: float | None = None
        try:
            sent = sock.send(data, flags)  # the stdlib's own argument checks
        except InterruptedError:
            sent = 0
        except BlockingIOError:
            if self._timeout == 0.0 or self._dontwait(SENDALL, (data, flags)):
                raise
            sent = 0
        if (type(data) is bytes or type(data) is bytearray) and sent == len(data):
            return  # all sent at once: the usual case, without a memoryview
        with memoryview(data) as view, view.cast("B") as view:
            total = len(view)
            while sent < total:
                try:
                    sent += sock.send(view[sent:], flags)
                    continue
                except InterruptedError:
                    continue
                except BlockingIOError:
                    if self._timeout == 0.0 or self._dontwait(SENDALL, (data, flags)):
                        raise
                if waiter is None:  # one deadline for the whole call
                    waiter, deadline = self._begin_wait()
                    if waiter.has_twin(SENDALL, (view[sent:], flags)):
                        await waiter.complete(SENDALL, sock, (view[sent:], flags), deadline)
                        return
                await waiter.wait(self._fd(), WRITE, deadline)

    async def _recv_waitall(self, bufsize: int, flags: int) -> bytes:
        """``recv(n, MSG_WAITALL)`` in blocking mode. On an O_NONBLOCK descriptor the
        kernel returns what has arrived, so gather until ``n`` bytes or end of file; an
        error after some data is left for the next call, as the kernel does."""
        data = await self._io(RECV, self._sock.recv, bufsize, flags)  # the stdlib's checks
        chunks = [data]
        got = len(data)
        while data and got < bufsize:
            try:
                data = await self._io(RECV, self._sock.recv, bufsize - got, flags)
            except OSError:
                break
            chunks.append(data)
            got += len(data)
        return b"".join(chunks)

    async def _recv_into_waitall(self, buffer: Any, nbytes: int, flags: int) -> int:
        """``recv_into(buf, n, MSG_WAITALL)`` in blocking mode (see :meth:`_recv_waitall`)."""
        recv_into = self._sock.recv_into
        got: int = await self._io(RECV_INTO, recv_into, buffer, nbytes, flags)
        with memoryview(buffer) as view, view.cast("B") as view:
            want = nbytes or len(view)
            n = got
            while n and got < want:
                try:
                    n = await self._io(RECV_INTO, recv_into, view[got:want], 0, flags)
                except OSError:
                    break
                got += n
        return got

    async def _sendfile(self, file: Any, offset: int, count: int | None) -> int:
        """``sendfile``: ``os.sendfile`` where it works, else a read-and-send loop.

        As the stdlib: a ``ValueError`` for a text file, a non-stream socket,
        a non-blocking socket; each wait (not the whole call) gets the timeout.
        """
        if "b" not in getattr(file, "mode", "b"):
            raise ValueError("file should be opened in binary mode")
        if not self._sock.type & socket.SOCK_STREAM:
            raise ValueError("only SOCK_STREAM type sockets are supported")
        if count is not None:
            if not isinstance(count, int):
                raise TypeError(f"count must be a positive integer (got {count!r})")
            if count <= 0:
                raise ValueError(f"count must be a positive integer (got {count!r})")
        if _has_os_sendfile:
            try:
                fileno = file.fileno()
                fsize = os.fstat(fileno).st_size
            except (AttributeError, io.UnsupportedOperation, OSError):
                pass
            else:
                if not fsize:
                    return 0
                if self._timeout == 0.0:
                    raise ValueError("non-blocking sockets are not supported")
                result = await self._sendfile_native(file, fileno, offset, count, fsize)
                if result is not None:
                    return result
        if self._timeout == 0.0:
            raise ValueError("non-blocking sockets are not supported")
        return await self._sendfile_send(file, offset, count)

    async def _sendfile_native(
        self, file: Any, fileno: int, offset: int, count: int | None, fsize: int
    ) -> int | None:
        """os.sendfile loop; ``None`` if the OS refuses this file before any byte is sent."""
        total = 0
        blocksize = min(count or fsize, _SENDFILE_BLOCK)
        try:
            while True:
                if count:
                    blocksize = min(count - total, _SENDFILE_BLOCK)
                    if blocksize <= 0:
                        break
                try:
                    sent = os.sendfile(self._fd(), fileno, offset, blocksize)
                except InterruptedError:
                    continue
                except BlockingIOError:
                    await self._wait_once(SENDFILE)
                    continue
                except OSError as exc:
                    if total == 0 and exc.errno != errno.EBADF:
                        return None  # e.g. EINVAL/ENOTSOCK: fall back to send()
                    raise
                if sent == 0:
                    break  # end of file
                offset += sent
                total += sent
            return total
        finally:
            if total > 0 and hasattr(file, "seek"):
                file.seek(offset)

    async def _sendfile_send(self, file: Any, offset: int, count: int | None) -> int:
        if offset:
            file.seek(offset)
        blocksize = min(count, _SEND_BLOCK) if count else _SEND_BLOCK
        total = 0
        try:
            while True:
                if count:
                    blocksize = min(count - total, blocksize)
                    if blocksize <= 0:
                        break
                data = memoryview(file.read(blocksize))
                if not data:
                    break
                while data:
                    try:
                        sent = self._sock.send(data)
                    except InterruptedError:
                        continue
                    except BlockingIOError:
                        await self._wait_once(SENDFILE)
                        continue
                    total += sent
                    data = data[sent:]
            return total
        finally:
            if total > 0 and hasattr(file, "seek"):
                file.seek(offset + total)

    async def _wait_once(self, op: Op) -> None:
        """One wait with the full timeout (the stdlib's per-wait rule for sendfile)."""
        waiter, deadline = self._begin_wait()
        await waiter.wait(self._fd(), op.event, deadline)
