"""The engine: a socket's semantics, written once for both faces.

Everything the stdlib's C socket module decides lives here: the timeout mode
(``None`` / ``0.0`` / ``t``), the deadline (computed once per call, on the
waiter's clock), the retries on ``EINTR`` and on a wake-up that finds the
socket still not ready, ``MSG_DONTWAIT`` and ``MSG_WAITALL`` in blocking mode,
partial sends, connect completion, ``accept``'s new socket, ``sendfile`` and
address resolution. TLS sockets run through the same retry loop: the stdlib's
``SSLWantReadError``/``SSLWantWriteError`` say which readiness to wait for.

Every function takes the waiter explicitly (how to wait: ``_waiters``) and the
face socket whose state it works on (:class:`State`); none imports an event
loop. The async face awaits these coroutines on its loop; the sync face runs
them with a one-step trampoline (``_sync.run``), its waiter blocking in
``poll()`` instead of suspending, and calls :func:`attempt` inline first.
"""

from __future__ import annotations

import errno
import io as _io
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Final, NoReturn, Protocol, TypeVar

from . import _resolve
from ._ops import ACCEPT, READ, RECV, RECV_INTO, SENDALL, SENDFILE, WRITE, Op
from ._waiters.base import Waiter, ebadf
from ._waiters.probe import probe

try:
    from ssl import SSLWantReadError, SSLWantWriteError
except ImportError:  # pragma: no cover - Python built without ssl

    class SSLWantReadError(OSError):  # type: ignore[no-redef]
        """Never raised: there is no ssl module."""

    class SSLWantWriteError(OSError):  # type: ignore[no-redef]
        """Never raised: there is no ssl module."""


T = TypeVar("T")

# What a non-blocking connect() reports while the connection proceeds (the C
# module's SOCK_INPROGRESS_ERR); EINTR also means it goes on asynchronously.
# (EAGAIN on a TCP connect means "no free local port": an error, not progress.)
CONNECTING: Final = frozenset(
    {errno.EWOULDBLOCK if sys.platform == "win32" else errno.EINPROGRESS, errno.EINTR}
)
_UNIX_RETRY_FIRST = 0.001
_UNIX_RETRY_MAX = 0.05
# Plain ints: a test against an IntFlag member costs a Python call.
_MSG_DONTWAIT = int(getattr(socket, "MSG_DONTWAIT", 0))
_MSG_PEEK = int(socket.MSG_PEEK)
_MSG_WAITALL = int(getattr(socket, "MSG_WAITALL", 0))
_INET = (socket.AF_INET, socket.AF_INET6)
# A TCP socket's state, the first byte of TCP_INFO (Linux): CLOSE after a reset; the
# states in which the peer may still send (ESTABLISHED, FIN_WAIT1, FIN_WAIT2).
_TCP_INFO: int | None = getattr(socket, "TCP_INFO", None) if sys.platform == "linux" else None
_TCP_CLOSE = b"\x07"
_TCP_RECEIVING = (b"\x01", b"\x04", b"\x05")
_PEEK_POLL_FIRST = 0.0005
_PEEK_POLL_MAX = 0.02
_MSG_ERRQUEUE = int(getattr(socket, "MSG_ERRQUEUE", 0))
_NO_WAIT = _MSG_DONTWAIT | _MSG_ERRQUEUE  # flags whose blocking call may not wait (_no_wait)
_SENDFILE_BLOCK = 1 << 30  # as the stdlib: at most 1 GiB per os.sendfile call
_CAPS_COUNT = sys.version_info >= (3, 13)  # ...a ``count`` too, from 3.13 on
_SEND_BLOCK = 8192  # the stdlib's send-loop block for sendfile without os.sendfile
_has_os_sendfile = hasattr(os, "sendfile")
_AF_UNIX = getattr(socket, "AF_UNIX", None)


class State(Protocol):
    """What the engine needs of a face's socket."""

    _sock: socket.socket  # the raw socket: performs the syscalls and their argument checks
    _timeout: float | None  # the mode
    _family: int
    _waited: bool  # the read hint: its last plain read had to wait (see read())
    _probe: Any  # the read hint's probe of the descriptor (_waiters.probe), made on first use

    def settimeout(self, value: float | None, /) -> None: ...

    def _watcher(self, waiter: Waiter) -> Waiter: ...


class Wait:
    """What :func:`attempt` returns when the call would block and the mode says wait:
    the readiness to wait for before the next attempt."""

    __slots__ = ("event",)

    def __init__(self, event: int) -> None:
        self.event = event


_WAIT: Final = (Wait(READ), Wait(WRITE))

TRY: Final = -1  # retry(): the readiness to wait for first, where it attempts first


class _Mode:
    """The type of ``MODE``, :func:`retry`'s "the deadline the mode gives"."""

    __slots__ = ()


MODE: Final = _Mode()


def raise_errno(err: int) -> NoReturn:
    """Raise the ``OSError`` subclass the stdlib raises for ``err`` (ConnectionRefusedError...)."""
    raise OSError(err, os.strerror(err))


def fileno(s: State) -> int:
    """The socket's descriptor; ``OSError(EBADF)`` once it is closed."""
    fd = s._sock.fileno()
    if fd == -1:
        raise ebadf()
    return fd


async def wait(waiter: Waiter, s: State, event: int, until: float | None) -> None:
    """Wait until the socket may be ready for ``event`` (every wait of the engine is this)."""
    await s._watcher(waiter).wait(fileno(s), event, until)


def watch(waiter: Waiter, s: State) -> int:
    """The socket's descriptor, for a driver that waits on it with ``waiter.wait_any``."""
    s._watcher(waiter)
    return fileno(s)


def deadline(waiter: Waiter, timeout: float | None) -> float | None:
    """The deadline of a call that starts now in mode ``timeout`` (``None``: none)."""
    return None if timeout is None else waiter.clock() + timeout


# -- the one retry loop ---------------------------------------------------------


def attempt(s: State, op: Op, fn: Callable[..., T], args: tuple[Any, ...]) -> T | Wait:
    """One attempt at ``fn(*args)`` (``EINTR`` retried, PEP 475): its result, or a
    :class:`Wait` saying which readiness to wait for before the next attempt.

    Raises what ``fn`` raises; where it would block and the mode says not to wait
    (non-blocking mode; ``MSG_DONTWAIT`` in blocking mode, as the stdlib's blocking
    call), raises ``BlockingIOError`` (``SSLWant*Error`` on a TLS socket) at once.
    """
    while True:
        try:
            return fn(*args)
        except WOULD_BLOCK as exc:
            wait = verdict(s, op, args, exc)
            if wait is not None:
                return wait


# What a non-blocking call raises when it would block (or was interrupted): the one
# list every attempt catches, and hands to verdict().
WOULD_BLOCK: Final = (BlockingIOError, InterruptedError, SSLWantReadError, SSLWantWriteError)


def verdict(s: State, op: Op, args: tuple[Any, ...], exc: OSError) -> Wait | None:
    """What a call that raised ``exc`` (one of ``WOULD_BLOCK``) does next: ``None``, try
    again at once (EINTR); a :class:`Wait`; or raise ``exc``, as the mode says."""
    if type(exc) is InterruptedError:
        return None
    if s._timeout == 0.0:
        raise exc
    if isinstance(exc, SSLWantReadError):
        return _WAIT[READ]
    if isinstance(exc, SSLWantWriteError):
        return _WAIT[WRITE]
    if s._timeout is None and op.flags(args) & _NO_WAIT and _no_wait(s, op, args):
        raise exc
    return _WAIT[op.event]


def _no_wait(s: State, op: Op, args: tuple[Any, ...]) -> bool:
    """Whether the stdlib's blocking call with these flags returns at once: with
    ``MSG_DONTWAIT``; with ``MSG_ERRQUEUE`` except on AF_UNIX, whose kernel ignores
    the flag (an empty error queue is ``EAGAIN`` at once, readable or not)."""
    flags = op.flags(args)
    return bool(flags & _MSG_DONTWAIT) or (
        bool(flags & _MSG_ERRQUEUE) and op.event == READ and s._family != _AF_UNIX
    )


def settle(s: State, op: Op, fn: Callable[..., T], args: tuple[Any, ...], exc: OSError) -> T | Wait:
    """The rest of an attempt whose first try raised ``exc`` (one of ``WOULD_BLOCK``):
    raises it where the mode says so; else a :class:`Wait`, or after ``EINTR`` the
    result of the rest of the attempt."""
    wait = verdict(s, op, args, exc)
    if wait is None:
        return attempt(s, op, fn, args)
    return wait


def rest(
    waiter: Waiter,
    s: State,
    op: Op,
    fn: Callable[..., T],
    args: tuple[Any, ...],
    exc: OSError,
    hint: bool = False,
    until: float | _Mode | None = MODE,
) -> Awaitable[T]:
    """The rest of a call whose first attempt, made inline by a face, raised ``exc``
    (one of ``WOULD_BLOCK``), for the caller to await *outside* its ``except`` (so that
    what the call raises later chains nothing): raises it where the mode says so; else
    :func:`retry`'s coroutine from the wait (``hint``: as :func:`retry`'s; ``until``:
    the call's deadline, if a wait before the attempt took it), or after ``EINTR`` the
    result of the rest of the attempt."""
    tried = settle(s, op, fn, args, exc)
    if isinstance(tried, Wait):
        return retry(waiter, s, op, fn, args, tried.event, until, hint)
    return _done(tried)


async def _done(result: T) -> T:
    return result


def io(waiter: Waiter, s: State, op: Op, fn: Callable[..., T], *args: Any) -> Awaitable[T]:
    """``fn(*args)`` in the socket's mode: tried at once; while it would block, wait as
    the mode says and try again (:func:`retry`, awaited by the caller: no frame of its own).

    Non-blocking mode raises ``BlockingIOError`` at once; timeout mode raises
    ``TimeoutError('timed out')`` at the deadline (computed once per call).
    Where every call must be a checkpoint (trio), it is one (:func:`checkpointed_io`).
    """
    if waiter.checkpoints:
        waiter = waiter.now()  # the async face's RUNNING: which library runs this call?
        if waiter.checkpoints:
            return checkpointed_io(waiter, s, op, fn, args)
    return retry(waiter, s, op, fn, args, TRY, MODE)


def read(
    waiter: Waiter, s: State, op: Op, fn: Callable[..., T], size: int, args: tuple[Any, ...]
) -> Awaitable[T]:
    """A plain read (``recv``/``recv_into`` without flags) of at most ``size`` bytes
    where every call must be a checkpoint (trio): with the read hint, :func:`retry`
    waiting first (the wait is the checkpoint), else :func:`checkpointed_io`. (Measured
    under trio: waiting first without the probe costs more, since the wait for readiness
    already there costs trio an ``epoll_ctl`` and its I/O dispatch where a read that
    tries first yields once.)"""
    if s._waited and waits_first(s, size):
        return retry(waiter, s, op, fn, args, op.event, MODE, True)
    return checkpointed_io(waiter, s, op, fn, args, size > 0)


def wait_first(waiter: Waiter, s: State, op: Op) -> tuple[Awaitable[None], float | None]:
    """The wait a plain read makes before its first attempt where the read hint says so
    (:func:`waits_first`), for the face to await in its own frame (no coroutine of
    :func:`retry`'s) before it tries inline: the wait, and the call's deadline (the
    mode's, from now), which a later wait of the same call keeps (:func:`rest`).
    ``OSError(EBADF)`` if the socket is closed."""
    fd = s._sock.fileno()
    if fd == -1:
        raise ebadf()
    watcher = s._watcher(waiter)
    until = None if s._timeout is None else watcher.clock() + s._timeout
    return watcher.wait(fd, op.event, until), until


def waits_first(s: State, size: int) -> bool:
    """The read hint: whether a plain read (``recv``/``recv_into`` without flags) of at
    most ``size`` bytes (``0``: unknown, or arguments the syscall may refuse) waits for
    readiness before its first attempt.

    If the socket's last such read had to wait for its data (``_waited``: a peer
    slower than this side, as under request/response load, where the read after an
    answer almost always fails with ``EAGAIN``), the read first asks the kernel
    whether the socket is readable (``poll`` with no timeout: a third of the cost of
    a ``recv`` that fails, with its exception): if it is not, the read waits for
    readiness *first* (:func:`wait_first`, or :func:`read` under trio), as the
    stdlib's timeout mode always does; else it tries at once. Every waiter reports
    readiness that is already there, so the order changes no result, only the cost.
    (The probe also sees a pending error or end of file, which then is read at once.)
    Non-blocking mode always tries at once. False where the probe cannot tell (then
    the read tries).
    """
    if not (s._waited and size > 0 and s._timeout != 0.0):
        return False
    look = s._probe
    if look is None:
        fd = s._sock.fileno()
        if fd == -1:
            return False
        look = s._probe = probe(fd)
    try:
        return not look(0)
    except (OSError, ValueError):  # pragma: no cover - e.g. out of memory
        return False


def read_size(buffer: Any, nbytes: Any) -> int:
    """The most ``recv_into(buffer, nbytes)`` may read, for :func:`waits_first`, where the
    arguments are surely valid (a writable contiguous buffer of that size); else 0."""
    kind = type(buffer)
    if kind is bytearray:
        size = len(buffer)
    elif kind is memoryview and not buffer.readonly and buffer.c_contiguous:
        size = buffer.nbytes
    else:
        return 0
    if type(nbytes) is not int or not 0 <= nbytes <= size:
        return 0
    return nbytes or size


async def checkpointed_io(
    waiter: Waiter,
    s: State,
    op: Op,
    fn: Callable[..., T],
    args: tuple[Any, ...],
    hint: bool = False,
) -> T:
    """:func:`io` where every call must be a checkpoint (trio), in one frame: a
    cancellation point before the syscall and, after a syscall that completed (or
    failed) without waiting, a schedule point, shielded so that no cancellation lands
    after data was consumed. A call that must wait has its checkpoint in the wait
    (:func:`retry`). ``hint``: a plain read, as :func:`retry`'s."""
    await waiter.cancel_point()
    tried: T | Wait
    try:  # (attempt(), inlined)
        tried = fn(*args)
    except WOULD_BLOCK as exc:
        try:
            tried = settle(s, op, fn, args, exc)  # raises in non-blocking mode
        except BaseException:
            await waiter.schedule_point()
            raise
    except BaseException:
        await waiter.schedule_point()
        raise
    if isinstance(tried, Wait):  # (awaited outside the except: no chained context)
        return await retry(waiter, s, op, fn, args, tried.event, MODE, hint)
    if hint:
        s._waited = False
    await waiter.schedule_point()
    return tried


async def checkpointed_sendall(waiter: Waiter, s: State, data: Any, flags: int) -> None:
    """:func:`sendall` where every call must be a checkpoint (trio): as
    :func:`checkpointed_io` for the first attempt; the rest, if any, through
    ``waiter.checkpointed`` (a wait is its checkpoint)."""
    await waiter.cancel_point()
    try:
        sent = send_first(s, data, flags)
    except BaseException:
        await waiter.schedule_point()
        raise
    if sent is None:
        await waiter.schedule_point()
    else:
        await waiter.checkpointed(sendall(waiter, s, data, flags, sent))


def io_until(
    waiter: Waiter, s: State, op: Op, until: float | None, fn: Callable[..., T], *args: Any
) -> Awaitable[T]:
    """:func:`io` with the deadline ``until`` (``None``: none) in place of the mode's, for
    a call made of several (a buffered read, a TLS handshake) that shares one deadline.
    Non-blocking mode still raises at once."""
    return retry(waiter, s, op, fn, args, TRY, until)


async def retry(
    waiter: Waiter,
    s: State,
    op: Op,
    fn: Callable[..., T],
    args: tuple[Any, ...],
    event: int,
    until: float | _Mode | None,
    hint: bool = False,
) -> T:
    """The one retry loop: wait for ``event`` (``TRY``: attempt first), try again, until
    done. A wake-up that still finds the call would block (another task was served
    first) waits again with the time left. ``until``: the deadline, or ``MODE``: the
    mode's, from the first wait. ``hint``: a plain read, which records in ``_waited``
    whether it had to wait (:func:`waits_first`)."""
    if hint:
        s._waited = event != TRY
    while True:
        if event != TRY:
            fd = s._sock.fileno()  # (wait() and fileno(), inlined)
            if fd == -1:
                raise ebadf()
            watcher = s._watcher(waiter)
            if isinstance(until, _Mode):
                until = None if s._timeout is None else watcher.clock() + s._timeout
            await watcher.wait(fd, event, until)
        try:  # (attempt(), inlined)
            return fn(*args)
        except WOULD_BLOCK as exc:
            result = settle(s, op, fn, args, exc)
        if not isinstance(result, Wait):
            return result
        if hint:
            s._waited = True
        event = result.event


async def wait_once(waiter: Waiter, s: State, op: Op) -> None:
    """One wait for ``op``'s readiness with the full timeout (sendfile's per-wait rule)."""
    await wait(waiter, s, op.event, deadline(waiter, s._timeout))


# -- addresses ---------------------------------------------------------------------


def needs_resolution(s: State, address: Any) -> bool:
    """Whether ``address`` holds a host name the resolver must turn into a number."""
    return _resolve.needs_resolution(s._family, address)


async def resolve(
    waiter: Waiter,
    s: State,
    address: Any,
    until: float | None = None,
    call: str = "connect",
    args: tuple[Any, ...] = (),
) -> Any:
    """``address`` with a host name resolved (``_resolve``) without blocking the loop,
    once the stdlib's ``call(*args, address)`` would have accepted its arguments."""
    if not _resolve.needs_resolution(s._family, address):
        return address
    sock = s._sock
    return await _resolve.resolve(
        s._family, sock.type, sock.proto, address, waiter, until, call, args
    )


async def bind(waiter: Waiter, s: State, address: Any) -> None:
    """``bind``, a host name resolved first."""
    s._sock.bind(await resolve(waiter, s, address, call="bind"))


# -- multi-step calls --------------------------------------------------------------


async def accept(waiter: Waiter, s: State) -> tuple[int, Any]:
    """Wait for a connection: ``(fd, address)``; the face wraps the new descriptor."""
    return await io(waiter, s, ACCEPT, s._sock._accept)  # type: ignore[attr-defined]


def _settle(sock: socket.socket, address: Any) -> None:
    """After a non-blocking connect completes, connect() once more, as a blocking
    connect() leaves the socket: Linux then reports EISCONN to the next connect()."""
    try:
        sock.connect_ex(address)
    except OSError:
        pass


async def connect(
    waiter: Waiter, s: State, address: Any, ex: bool, until: float | None = None
) -> int:
    """``connect`` (``ex=False``: raise) or ``connect_ex`` (``ex=True``: return the errno).

    ``until``: a deadline that ends the wait earlier than the mode's would.
    """
    address = await resolve(waiter, s, address, call="connect_ex" if ex else "connect")
    sock = s._sock
    timeout = s._timeout
    when = deadline(waiter, timeout)
    if until is not None and (when is None or until < when):
        when = until
    # connect() and connect_ex() parse the address and name themselves in errors.
    try:
        if ex:
            err = sock.connect_ex(address)
        else:
            sock.connect(address)
            err = 0
    except (BlockingIOError, InterruptedError) as exc:
        err = exc.errno or errno.EINPROGRESS
    if err == errno.EAGAIN and timeout is None and s._family == _AF_UNIX:
        # A full Unix backlog: a blocking connect() sleeps until there is room.
        # There is no readiness event for that, so retry after a growing sleep.
        delay = _UNIX_RETRY_FIRST
        while err == errno.EAGAIN:
            await waiter.sleep(delay)
            delay = min(delay * 2, _UNIX_RETRY_MAX)
            err = sock.connect_ex(address)
    if err == 0:  # (EISCONN here is an error: connect() on a connected socket)
        return 0
    # Non-blocking mode reports progress as an error; timeout mode raises a Unix
    # EAGAIN at once, as the stdlib does.
    if timeout == 0.0 or err not in CONNECTING:
        if ex:
            return err
        raise_errno(err)
    try:
        await wait(waiter, s, WRITE, when)
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


def connect_status(s: State) -> int | None:
    """A non-blocking connect under way, after a wake-up: 0 once connected, the errno
    it failed with, or None while it still proceeds (the wake-up was early)."""
    sock = s._sock
    err: int = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        return err
    try:
        sock.getpeername()
    except OSError as exc:
        return None if exc.errno == errno.ENOTCONN else exc.errno
    return 0


def connected(s: State, address: Any, timeout: float | None) -> None:
    """Enter the mode ``timeout`` after a non-blocking connect to ``address`` succeeded,
    leaving the socket as a connect() in that mode would."""
    s.settimeout(timeout)
    if timeout is None:
        _settle(s._sock, address)


def send_first(s: State, data: Any, flags: int) -> int | None:
    """The first attempt of :func:`sendall` (the stdlib's own argument checks): ``None``
    if it sent all of ``data`` (the usual case), else how many bytes it sent. A face
    makes it inline and awaits :func:`sendall` only for the rest."""
    sock = s._sock
    try:  # (attempt(), inlined)
        sent = sock.send(data, flags)
    except WOULD_BLOCK as exc:
        result = settle(s, SENDALL, sock.send, (data, flags), exc)
        sent = 0 if isinstance(result, Wait) else result
    if (type(data) is bytes or type(data) is bytearray) and sent == len(data):
        return None  # all sent at once, without a memoryview
    return sent


async def sendall(waiter: Waiter, s: State, data: Any, flags: int, sent: int | None = None) -> None:
    """Send all of ``data``; one deadline for the whole call. ``sent``: what
    :func:`send_first` returned, if it was made already."""
    if sent is None:
        sent = send_first(s, data, flags)
        if sent is None:
            return
    sock = s._sock
    when: float | None = None
    waited = False
    with memoryview(data) as view, view.cast("B") as view:
        total = len(view)
        while sent < total:
            result = attempt(s, SENDALL, sock.send, (view[sent:], flags))
            if not isinstance(result, Wait):
                sent += result
                continue
            if not waited:  # one deadline for the whole call
                waited = True
                when = deadline(waiter, s._timeout)
            await wait(waiter, s, result.event, when)


class Keeper(State, Protocol):
    """A socket that keeps the bytes a cancelled ``MSG_WAITALL`` gather had read."""

    _kept: bytes  # returned first by the next recv* call


def _is_tcp(s: State) -> bool:
    return s._family in _INET and s._sock.type == socket.SOCK_STREAM


def _tcp_closed(s: State) -> bool:
    """A TCP socket in state CLOSE (reset, or failed): no byte will arrive any more, and
    a read on its empty queue would consume the pending error that the stdlib's
    ``MSG_WAITALL`` call leaves for the next call. (Linux: ``TCP_INFO``; else False.)"""
    if _TCP_INFO is None or not _is_tcp(s):
        return False
    try:
        return s._sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 1) == _TCP_CLOSE
    except OSError:
        return False


def _tcp_receiving(s: State) -> bool:
    """A TCP socket whose peer may still send (Linux: ``TCP_INFO``; else False)."""
    if _TCP_INFO is None or not _is_tcp(s):
        return False
    try:
        return s._sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 1) in _TCP_RECEIVING
    except OSError:
        return False


def gathers(s: State, flags: int) -> bool:
    """Whether ``recv*(n, flags)`` must gather: ``MSG_WAITALL`` in blocking mode on a
    stream socket, without ``MSG_DONTWAIT`` (the kernel's answer to an O_NONBLOCK
    descriptor is what has arrived; the stdlib's blocking call waits for all ``n``)."""
    return s._timeout is None and not flags & _MSG_DONTWAIT and s._sock.type == socket.SOCK_STREAM


async def recv_waitall(waiter: Waiter, s: Keeper, bufsize: int, flags: int) -> bytes:
    """``recv(n, MSG_WAITALL)`` in blocking mode on a stream socket: gather until ``n``
    bytes or end of file.

    As the stdlib's: an error after some data is left for the next call (a TCP reset
    is not read here); with ``MSG_PEEK`` nothing is consumed (TCP waits for ``n``
    bytes, polling; AF_UNIX returns what is queued). If cancelled, the bytes gathered
    are kept and the next ``recv*`` returns them first: a cancelled call consumes nothing.
    """
    recv = s._sock.recv
    data = await io(waiter, s, RECV, recv, bufsize, flags)  # the stdlib's checks
    if not data or len(data) >= bufsize:
        return data
    if flags & _MSG_PEEK:  # consumes nothing: readiness stays on, so poll
        delay = _PEEK_POLL_FIRST
        while len(data) < bufsize and _tcp_receiving(s):
            await waiter.sleep(delay)
            delay = min(delay * 2, _PEEK_POLL_MAX)
            data = await io(waiter, s, RECV, recv, bufsize, flags)
        return data
    buf = bytearray(data)
    await _gather(waiter, s, buf, None, len(buf), bufsize, flags)
    return bytes(buf)


async def recv_into_waitall(waiter: Waiter, s: Keeper, buffer: Any, nbytes: int, flags: int) -> int:
    """``recv_into(buf, n, MSG_WAITALL)`` in blocking mode (see :func:`recv_waitall`)."""
    recv_into = s._sock.recv_into
    got: int = await io(waiter, s, RECV_INTO, recv_into, buffer, nbytes, flags)
    with memoryview(buffer) as view, view.cast("B") as view:
        want = nbytes or len(view)
        if not got or got >= want:
            return got
        if flags & _MSG_PEEK:  # consumes nothing: readiness stays on, so poll
            delay = _PEEK_POLL_FIRST
            while got < want and _tcp_receiving(s):
                await waiter.sleep(delay)
                delay = min(delay * 2, _PEEK_POLL_MAX)
                got = await io(waiter, s, RECV_INTO, recv_into, buffer, nbytes, flags)
            return got
        return await _gather(waiter, s, None, view, got, want, flags)


async def _gather(
    waiter: Waiter,
    s: Keeper,
    buf: bytearray | None,
    view: memoryview | None,
    got: int,
    want: int,
    flags: int,
) -> int:
    """Read into ``view[got:want]`` (or, without a view, append to ``buf``) until ``want`` bytes,
    end of file or an error (left for the next call); return the count. Cancelled, the
    bytes read so far are kept for the next ``recv*`` call."""
    sock = s._sock
    try:
        while got < want:
            if _tcp_closed(s):
                break  # reset: the error is the next call's, as the kernel leaves it
            try:
                if view is None:
                    result: Any = attempt(s, RECV, sock.recv, (want - got, flags))
                else:
                    result = attempt(s, RECV_INTO, sock.recv_into, (view[got:want], 0, flags))
            except OSError:
                break  # (AF_UNIX: the kernel too returns the data and drops the error)
            if isinstance(result, Wait):
                await wait(waiter, s, result.event, None)
                continue
            if not result:
                break  # end of file
            if buf is not None:
                buf += result
                got = len(buf)
            else:
                got += result
    except Exception:
        raise  # e.g. the socket was closed meanwhile: nothing to keep
    except BaseException:  # cancelled
        kept = bytes(view[:got]) if view is not None else bytes(buf or b"")
        s._kept = kept + s._kept
        raise
    return got


def take_kept(s: Keeper, bufsize: int, flags: int) -> bytes:
    """Up to ``bufsize`` of the kept bytes (left kept with ``MSG_PEEK``)."""
    kept = s._kept
    data = kept[:bufsize]
    if not flags & _MSG_PEEK:
        s._kept = kept[bufsize:]
    return data


async def recv_kept(waiter: Waiter, s: Keeper, bufsize: int, flags: int) -> bytes:
    """``recv(n, flags)`` while bytes of a cancelled gather are kept: those come first
    (then, for a ``MSG_WAITALL`` call in blocking mode, the gather goes on)."""
    s._sock.recv(min(bufsize, 0), flags)  # the stdlib's checks (recv(0) reads nothing)
    data = take_kept(s, bufsize, flags)
    if len(data) < bufsize and flags & _MSG_WAITALL and not flags & _MSG_PEEK and gathers(s, flags):
        buf = bytearray(data)
        await _gather(waiter, s, buf, None, len(buf), bufsize, flags)
        return bytes(buf)
    return data


def recvmsg_into_kept(s: Keeper, buffers: Any, flags: int) -> int:
    """``recvmsg_into(buffers, ...)`` while bytes of a cancelled gather are kept: those,
    into the buffers in turn."""
    got = 0
    for buffer in buffers:
        with memoryview(buffer) as view, view.cast("B") as view:
            data = take_kept(s, len(view), flags)
            view[: len(data)] = data
            got += len(data)
            if len(data) < len(view) or flags & _MSG_PEEK:
                break
    return got


async def recv_into_kept(waiter: Waiter, s: Keeper, buffer: Any, nbytes: int, flags: int) -> int:
    """``recv_into(buf, n, flags)`` while bytes of a cancelled gather are kept."""
    s._sock.recv(0, flags)  # the stdlib's check of the flags
    with memoryview(buffer) as view, view.cast("B") as view:
        if nbytes < 0:
            raise ValueError("negative buffersize in recv_into")
        if nbytes > len(view):
            raise ValueError("buffer too small for requested bytes")
        want = nbytes or len(view)
        data = take_kept(s, want, flags)
        got = len(data)
        view[:got] = data
        if got < want and flags & _MSG_WAITALL and not flags & _MSG_PEEK and gathers(s, flags):
            return await _gather(waiter, s, None, view, got, want, flags)
        return got


async def sendfile(waiter: Waiter, s: State, file: Any, offset: int, count: int | None) -> int:
    """``sendfile``: ``os.sendfile`` where it works, else a read-and-send loop.

    As the stdlib: a ``ValueError`` for a text file, a non-stream socket,
    a non-blocking socket; each wait (not the whole call) gets the timeout.
    """
    if "b" not in getattr(file, "mode", "b"):
        raise ValueError("file should be opened in binary mode")
    if not s._sock.type & socket.SOCK_STREAM:
        raise ValueError("only SOCK_STREAM type sockets are supported")
    if count is not None:
        if not isinstance(count, int):
            raise TypeError(f"count must be a positive integer (got {count!r})")
        if count <= 0:
            raise ValueError(f"count must be a positive integer (got {count!r})")
    if _has_os_sendfile:
        try:
            fno = file.fileno()
            fsize = os.fstat(fno).st_size
        except (AttributeError, _io.UnsupportedOperation, OSError):
            pass
        else:
            if not fsize:
                return 0
            if s._timeout == 0.0:
                raise ValueError("non-blocking sockets are not supported")
            result = await _sendfile_native(waiter, s, file, fno, offset, count, fsize)
            if result is not None:
                return result
    if s._timeout == 0.0:
        raise ValueError("non-blocking sockets are not supported")
    return await _sendfile_send(waiter, s, file, offset, count)


async def _sendfile_native(
    waiter: Waiter, s: State, file: Any, fno: int, offset: int, count: int | None, fsize: int
) -> int | None:
    """os.sendfile loop; ``None`` if the OS refuses this file before any byte is sent."""
    total = 0
    blocksize = min(count or fsize, _SENDFILE_BLOCK)
    try:
        while True:
            if count:
                # As the running stdlib: 3.13 caps each call at 1 GiB; before, the rest of
                # ``count`` went uncapped (os.sendfile raising its OverflowError for a
                # count beyond ssize_t).
                blocksize = min(count - total, blocksize) if _CAPS_COUNT else count - total
                if blocksize <= 0:
                    break
            try:
                sent = os.sendfile(fileno(s), fno, offset, blocksize)
            except InterruptedError:
                continue
            except BlockingIOError:
                await wait_once(waiter, s, SENDFILE)
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


async def _sendfile_send(
    waiter: Waiter, s: State, file: Any, offset: int, count: int | None
) -> int:
    if offset:
        file.seek(offset)
    blocksize = min(count, _SEND_BLOCK) if count else _SEND_BLOCK
    total = 0
    send = s._sock.send
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
                result = attempt(s, SENDFILE, send, (data,))
                if isinstance(result, Wait):
                    await wait_once(waiter, s, SENDFILE)
                    continue
                total += result
                data = data[result:]
        return total
    finally:
        if total > 0 and hasattr(file, "seek"):
            file.seek(offset + total)
