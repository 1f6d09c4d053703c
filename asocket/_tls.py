"""TLS, written once for both faces: the state machine on the engine's retry loop.

The engine is the stdlib's own ``ssl.SSLSocket`` on the face socket's
descriptor (the *inner* socket), with its SSL object on two ``ssl.MemoryBIO``s
(:class:`Wire`): OpenSSL never touches the descriptor; asocket moves the
ciphertext between the BIOs and the descriptor, without waiting, inside each
TLS call (:func:`pump`). ``SSLWantReadError``/``SSLWantWriteError`` then mean
"the descriptor must become readable/writable" and the engine's retry loop waits
for that, as for plain sockets. The stdlib keeps deciding what it decides:
argument checks, ``suppress_ragged_eofs``, certificate errors, every message.
What is asocket's own, and written here once:

* the waits, through the face's waiter, under one deadline per call (a
  ``sendall`` or a handshake included), with the stdlib's timeout messages;
* the outgoing stream: OpenSSL's output is taken from its BIO right after each
  call, in order, and sent from ``Wire.tx``. A write is done when all of it is
  on the descriptor. A write interrupted by a timeout, a cancellation or
  non-blocking mode keeps its plaintext in ``_pending``; the next write first
  sends what is left (or, when it starts with those same bytes, counts them
  as its own: the stdlib's retry), so the peer receives the interrupted data
  followed exactly by what later writes pass;
* full duplex: a read that makes OpenSSL answer (a TLS 1.3 key update, a
  post-handshake message) sends the answer if the descriptor takes it, else
  leaves it to the write in progress, else waits until it can send it. OpenSSL
  never holds a half-written record, so reads and writes never collide (with
  the SSL object on the descriptor, a key update read while a write was
  interrupted broke the connection: BAD_WRITE_RETRY);
* one SSL call at a time per socket: ``s._ssl(fn, *args)`` runs each call
  (under a lock on the sync face, where threads share a socket; waits happen
  outside it); several tasks or threads may read and write at once;
* ``close()`` drops the SSL object before the descriptor goes (no
  close_notify, as the stdlib), so a woken waiter finds a closed socket.

Every function takes the waiter and the TLS face socket (:class:`TLSState`).
"""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import sys
from collections.abc import Callable
from typing import Any, Final, Protocol, TypeVar, cast

from . import _engine as e, _timeouts
from ._ops import READ, WRITE, Op
from ._waiters.base import Waiter, ebadf

T = TypeVar("T")


class _Closable(Protocol):
    def close(self) -> None: ...


S = TypeVar("S", bound=_Closable)

_StdlibSSLSocket = ssl.SSLSocket  # bound at import: see _new_inner

# The TLS calls, for the engine's retry loop (no flags argument: SSL takes none).
TLS_READ: Final = Op("tls_read", READ)
TLS_WRITE: Final = Op("tls_write", WRITE)

# The stdlib's own messages (Modules/_ssl.c) for a TLS call that timed out.
READ_TIMEOUT: Final = "The read operation timed out"
WRITE_TIMEOUT: Final = "The write operation timed out"
HANDSHAKE_TIMEOUT: Final = "The handshake operation timed out"
_BY_EVENT: Final = (READ_TIMEOUT, WRITE_TIMEOUT)  # unwrap: what it was waiting for

WRITE_BLOCK: Final = 256 << 10  # bytes per SSL write in sendall/sendfile
_BUSY: Final = -1  # _write_new: another write is pending, finish it first


class TLSState(e.State, Protocol):
    """What the TLS functions need of a face's TLS socket."""

    _sock: ssl.SSLSocket  # the inner socket: the stdlib's
    _wire: Wire  # its SSL object's ciphertext in memory
    _pending: bytes | memoryview | None  # an interrupted write's plaintext, until it is all sent

    def _ssl(self, fn: Callable[..., T], /, *args: Any) -> T:
        """Run one non-blocking SSL call (alone on this socket)."""
        ...


# -- the wire: ciphertext between the SSL object's memory BIOs and the descriptor -------

RECV_BLOCK: Final = 64 << 10  # most ciphertext bytes a read takes from the descriptor at once...
BULK_BLOCK: Final = 256 << 10  # ...until one fills it: then this, into the wire's own buffer
_sock_recv = socket.socket.recv  # the plain socket's calls, on the inner socket's descriptor
_sock_recv_into = socket.socket.recv_into
_sock_send = socket.socket.send
_MSG_PEEK: Final = socket.MSG_PEEK


class Wire:
    """A TLS socket's ciphertext in memory: ``incoming`` (read from the descriptor,
    not yet taken by OpenSSL), ``outgoing`` (written by OpenSSL, not yet taken) and
    ``tx`` (taken, not yet sent: the head of the outgoing stream)."""

    __slots__ = ("buffer", "incoming", "outgoing", "peeked", "tx")

    def __init__(self) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tx: bytes | memoryview = b""
        self.peeked = 0  # unwrap: bytes of ``incoming`` still on the descriptor too
        self.buffer: memoryview | None = None  # for bulk reads (see feed), made on first need


def use_wire(inner: ssl.SSLSocket) -> Wire:
    """Give ``inner`` a :class:`Wire` and put its SSL object (if it has one yet: the
    stdlib makes it once connected) on the wire's BIOs, with the same settings."""
    wire = Wire()
    if inner._sslobj is not None:  # type: ignore[attr-defined]
        inner._sslobj = inner.context._wrap_bio(  # type: ignore[attr-defined]
            wire.incoming,
            wire.outgoing,
            inner.server_side,
            inner.server_hostname,
            owner=inner,
            session=inner._session,  # type: ignore[attr-defined]
        )
    inner._wire = wire  # type: ignore[attr-defined]
    return wire


def wire_of(inner: ssl.SSLSocket) -> Wire:
    """The :class:`Wire` :func:`use_wire` gave ``inner``."""
    wire: Wire = inner._wire  # type: ignore[attr-defined]
    return wire


def drain(w: Wire, inner: ssl.SSLSocket) -> bool:
    """Send the outgoing stream without waiting: True once all of it is sent,
    False if the descriptor takes no more now. Raises the send's errors (what was
    not sent stays)."""
    tx = w.tx
    outgoing = w.outgoing
    while True:
        if not tx:
            if not outgoing.pending:
                w.tx = b""
                return True
            tx = outgoing.read()
        try:
            n = _sock_send(inner, tx)
        except BaseException as exc:
            w.tx = tx
            if type(exc) is BlockingIOError:
                return False
            raise
        tx = memoryview(tx)[n:] if n < len(tx) else b""


# What the stdlib's SSLSocket reports when the descriptor fails (a reset, a broken
# pipe) under a TLS read or write: before Python 3.13, OpenSSL's EOF (``SSLEOFError``,
# which ``suppress_ragged_eofs`` turns into ``b''`` on reads); from 3.13 on, the
# ``OSError`` itself. A handshake and ``unwrap`` report the ``OSError`` on every version.
_FAILURE_IS_EOF: Final = sys.version_info < (3, 13)


def _is_failure(exc: OSError) -> bool:
    """Whether ``exc`` is the connection failing (not a closed socket: EBADF)."""
    return type(exc) is not BlockingIOError and exc.errno != errno.EBADF


def feed(w: Wire, inner: ssl.SSLSocket, reading: bool = False) -> bool:
    """Read ciphertext from the descriptor into ``incoming`` without waiting: True
    if any came (or the end of the stream), False if none is there now. Under a
    read (``reading``), a failed receive is the end of the stream where the stdlib
    reports it so."""
    if w.incoming.eof:  # OpenSSL wants more after the end: it will say so, not wait
        raise _eof()
    buffer = w.buffer
    try:
        if buffer is None:
            data: Any = _sock_recv(inner, RECV_BLOCK)
            if len(data) == RECV_BLOCK:  # a bulk transfer: from now on, a buffer of its own
                w.buffer = memoryview(bytearray(BULK_BLOCK))
        else:
            data = buffer[: _sock_recv_into(inner, buffer)]
    except BlockingIOError:
        return False
    except OSError as exc:
        if not (reading and _FAILURE_IS_EOF and _is_failure(exc)):
            raise
        data = b""
    if data:
        w.incoming.write(data)
    else:
        w.incoming.write_eof()
    return True


def _sent(s: TLSState) -> bool:
    """:func:`drain` for a write, its failures reported as the stdlib's SSL write
    reports them."""
    try:
        return drain(s._wire, s._sock)
    except OSError as exc:
        raise _as_write_failure(exc)  # noqa: B904  (the send's error is its context)


def _as_write_failure(exc: OSError) -> OSError:
    """What the stdlib's SSL write raises where the send raised ``exc``."""
    return _eof() if _FAILURE_IS_EOF and _is_failure(exc) else exc


def _eof() -> ssl.SSLEOFError:
    return ssl.SSLEOFError(ssl.SSL_ERROR_EOF, "EOF occurred in violation of protocol")


def _answered(s: TLSState, w: Wire, reading: bool) -> bool:
    """Before a call waits for input: whether OpenSSL's output is out of the way. It
    is if the bytes went out, or, under a read, if a write in progress (``_pending``)
    will send them; else the call must wait until the descriptor takes them. Under a
    read, a failed send is the end of the stream where the stdlib reports it so."""
    if not w.tx and not w.outgoing.pending:
        return True
    try:
        return drain(w, s._sock) or (reading and s._pending is not None)
    except OSError as exc:
        if not (reading and _FAILURE_IS_EOF and _is_failure(exc)):
            raise
        if not w.incoming.eof:
            w.incoming.write_eof()
        return True


def want_write() -> ssl.SSLWantWriteError:
    """What a TLS call raises when its ciphertext waits for the descriptor."""
    return ssl.SSLWantWriteError(ssl.SSL_ERROR_WANT_WRITE, "The operation did not complete (write)")


def _call(s: TLSState, fn: Callable[..., T], args: tuple[Any, ...], reading: bool) -> T:
    """``fn(*args)``, a call of the inner socket, with the ciphertext moved without
    waiting: while OpenSSL wants input, send its output and read the descriptor.
    Raises ``SSLWantReadError`` when the descriptor has nothing to read,
    ``SSLWantWriteError`` when output must go out first and cannot now. A read
    (``reading``) that would surely find nothing reads the descriptor first."""
    w = s._wire
    tried = False  # the descriptor was read in this call and had nothing
    while True:
        if reading and not w.incoming.pending and _starved(s, w) and not feed(w, s._sock, True):
            tried = True  # (fn still runs first: its argument checks, OpenSSL's own error)
        try:
            return fn(*args)
        except ssl.SSLWantReadError:
            if not _answered(s, w, reading):
                raise want_write() from None
            if not tried and feed(w, s._sock, reading):
                continue
            raise
        except ssl.SSLError:
            _send_alert(w, s._sock)
            raise


def records_into(s: TLSState, buffer: Any, nbytes: int | None, flags: int) -> int:
    """The inner socket's ``recv_into`` (one TLS record's plaintext, as the stdlib's),
    then, while ``incoming`` holds more ciphertext and the buffer has room, the next
    records' too: one call where the stdlib takes one per record (16 KiB). It stops
    at the first record it cannot read at once; an error there shows in the next call."""
    n: int = s._sock.recv_into(buffer, nbytes, flags)
    w = s._wire
    obj = s._sock._sslobj  # type: ignore[attr-defined]  # (None after shutdown(): plain)
    if not n or not w.incoming.pending or obj is None or not _plain_bytes(buffer):
        return n
    size = len(buffer) if nbytes is None or nbytes == 0 else min(nbytes, len(buffer))
    read = obj.read
    with memoryview(buffer) as view:
        while n < size and w.incoming.pending:
            try:
                got = read(size - n, view[n:])
            except ssl.SSLError:
                break
            if not got:
                break
            n += got
    return n


def _plain_bytes(buffer: Any) -> bool:
    """Whether ``buffer`` is a ``bytearray`` or a flat byte ``memoryview``."""
    if type(buffer) is bytearray:
        return True
    return type(buffer) is memoryview and buffer.format == "B" and buffer.c_contiguous


def _starved(s: TLSState, w: Wire) -> bool:
    """Whether a read would surely find nothing: no ciphertext in ``incoming``, no
    plaintext in OpenSSL, no end of stream to report, an SSL object to read."""
    obj = s._sock._sslobj  # type: ignore[attr-defined]
    return obj is not None and not w.incoming.eof and not obj.pending()


def pump(s: TLSState, fn: Callable[..., T], /, *args: Any) -> T:
    """A read (``recv``, ``recv_into``, ``read`` of the inner socket) by :func:`_call`;
    what the read made OpenSSL write (a key update's answer) goes out if it can, else
    waits its turn."""
    result = _call(s, fn, args, True)
    w = s._wire
    if w.outgoing.pending or w.tx:
        _send_alert(w, s._sock)  # (a failure shows in the next call)
    return result


def _send_alert(w: Wire, inner: ssl.SSLSocket) -> None:
    """Send what OpenSSL wrote if the descriptor takes it now, errors ignored: after
    it refused the connection (the alert that tells the peer why), after a read."""
    try:
        drain(w, inner)
    except OSError:
        pass


def pump_fed(s: TLSState, fn: Callable[..., T], /, *args: Any) -> T:
    """:func:`pump` after a wait for readability: the descriptor is read first
    (saving OpenSSL's ``SSLWantReadError`` when it has nothing yet)."""
    w = s._wire
    if not w.incoming.pending and not w.incoming.eof:
        feed(w, s._sock, True)
    return pump(s, fn, *args)


def _handshake(s: TLSState) -> None:
    """One step of the handshake: OpenSSL's, then its last flight sent."""
    _call(s, s._sock.do_handshake, (), False)
    if not drain(s._wire, s._sock):
        raise want_write()


def _unwrap(s: TLSState) -> None:
    """One step of ``unwrap``: close_notify sent, the peer's read, everything sent.
    The descriptor is read with ``MSG_PEEK`` and only what OpenSSL used is taken
    from it: bytes the peer sends after its close_notify (plaintext, STARTTLS and
    back) stay there for the plain socket."""
    inner, w = s._sock, s._wire
    while inner._sslobj is not None:  # type: ignore[attr-defined]
        want: ssl.SSLWantReadError | None = None
        try:
            inner.unwrap()
        except ssl.SSLWantReadError as exc:
            want = exc
        finally:
            _settle_peek(w, inner)
        if want is None:
            break
        if not _answered(s, w, False):
            raise want_write()
        if not _peek(w, inner):
            raise want
    if not drain(w, inner):
        raise want_write()


def _peek(w: Wire, inner: ssl.SSLSocket) -> bool:
    """:func:`feed`, leaving the bytes on the descriptor (see :func:`_settle_peek`)."""
    try:
        data = _sock_recv(inner, RECV_BLOCK, _MSG_PEEK)
    except BlockingIOError:
        return False
    if not data:
        w.incoming.write_eof()
    else:
        w.incoming.write(data)
        w.peeked = len(data)
    return True


def _settle_peek(w: Wire, inner: ssl.SSLSocket) -> None:
    """After an SSL call on peeked bytes: take from the descriptor what OpenSSL used,
    drop the rest from ``incoming`` (it is still on the descriptor)."""
    if w.peeked:
        used = w.peeked - w.incoming.pending
        w.peeked = 0
        w.incoming.read()
        if used:
            _sock_recv(inner, used)


class _Deadline:
    """A call's deadline, computed on its first wait (a call that never waits pays nothing)."""

    __slots__ = ("_known", "_until", "_waiter")

    def __init__(self, waiter: Waiter, until: float | None = None, known: bool = False) -> None:
        self._waiter = waiter
        self._until = until
        self._known = known

    def get(self, s: TLSState) -> float | None:
        if not self._known:
            self._known = True
            self._until = e.deadline(self._waiter, s._timeout)
        return self._until


async def call(
    waiter: Waiter,
    s: TLSState,
    op: Op,
    message: str | None,
    fn: Callable[..., T],
    *args: Any,
    deadline: _Deadline | None = None,
) -> T:
    """``fn(*args)``, one SSL call, in the socket's mode: tried at once; while OpenSSL
    wants the descriptor readable or writable, wait for that and try again.

    Non-blocking mode raises ``SSLWantReadError``/``SSLWantWriteError``; timeout mode
    raises ``TimeoutError(message)`` at the deadline (``message=None``: the stdlib's
    message for what was awaited).
    """
    result = s._ssl(e.attempt, s, op, fn, args)
    if type(result) is not e.Wait:
        return result  # type: ignore[return-value]
    return await retry(waiter, s, op, message, fn, args, result.event, deadline)


async def retry(
    waiter: Waiter,
    s: TLSState,
    op: Op,
    message: str | None,
    fn: Callable[..., T],
    args: tuple[Any, ...],
    event: int,
    deadline: _Deadline | None = None,
) -> T:
    """The rest of :func:`call` after an attempt said to wait for ``event`` (``TRY``:
    try again at once; the faces make the first attempt inline)."""
    if deadline is None:
        deadline = _Deadline(waiter)
    while True:
        if event != e.TRY:  # (TRY: after EINTR, at once)
            try:
                await e.wait(waiter, s, event, deadline.get(s))
            except TimeoutError:
                raise TimeoutError(message or _BY_EVENT[event]) from None
        result = s._ssl(e.attempt, s, op, fn, args)
        if type(result) is not e.Wait:
            return result  # type: ignore[return-value]
        event = result.event


# -- handshake, reads, unwrap --------------------------------------------------------


async def do_handshake(waiter: Waiter, s: TLSState, until: float | None = None) -> None:
    """The TLS handshake, under the mode (or the deadline ``until`` if given)."""
    deadline = None if until is None else _Deadline(waiter, until, known=True)
    await call(waiter, s, TLS_READ, HANDSHAKE_TIMEOUT, _handshake, s, deadline=deadline)


async def unwrap(waiter: Waiter, s: TLSState) -> None:
    """The close_notify exchange, under the mode (an interrupted write finished
    first); afterwards the inner socket is a plain one (the face detaches it)."""
    if s._sock._sslobj is None:  # type: ignore[attr-defined]
        s._sock.unwrap()  # the stdlib's ValueError
    deadline = _Deadline(waiter)
    if s._pending is not None:
        await _finish(waiter, s, s._pending, deadline)
    await call(waiter, s, TLS_READ, None, _unwrap, s, deadline=deadline)


async def file_recv_into(waiter: Waiter, s: TLSState, until: float | None, view: memoryview) -> int:
    """A buffered file's receive (``_file``): plaintext into ``view``, by ``until``."""
    deadline = _Deadline(waiter, until, known=True)
    args = (s, records_into, s, view, len(view), 0)
    return await call(waiter, s, TLS_READ, READ_TIMEOUT, pump, *args, deadline=deadline)


async def file_send(waiter: Waiter, s: TLSState, until: float | None, view: memoryview) -> int:
    """A buffered file's send (``_file``): one write of ``view`` by ``until``, with the
    pending-write guard of :func:`send`."""
    return await _send(waiter, s, view, _Deadline(waiter, until, known=True))


# -- writes: the pending-write guard ---------------------------------------------------


def _write_new(s: TLSState, data: Any) -> int:
    """One SSL write of ``data`` (run by ``s._ssl``), then its ciphertext sent:
    ``_BUSY`` if another write is pending; if the descriptor cannot take it all now,
    keep a copy of ``data`` as pending (the rest is sent before any later write)."""
    if s._pending is not None:
        return _BUSY
    inner = s._sock
    try:
        n: int = inner.send(data)  # into memory: done at once, but in a handshake
    except ssl.SSLWantReadError:
        n = _call(s, inner.send, (data,), False)
    except ssl.SSLError:
        _send_alert(s._wire, inner)
        raise
    w = s._wire
    if not w.tx:  # the usual case, inline: the records go out in one send
        out = w.outgoing.read()
        try:
            sent = _sock_send(inner, out)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            w.tx = out  # (not sent: a later write reports the failure again)
            raise _as_write_failure(exc)  # noqa: B904
        if sent == len(out) and not w.outgoing.pending:
            return n
        w.tx = memoryview(out)[sent:]
    if not _sent(s):
        s._pending = _keep(data)
        raise want_write()
    return n


def _keep(data: Any) -> bytes | memoryview:
    """The bytes of ``data``, kept for the retry: ``data`` itself where it cannot change
    (``bytes``, a view of ``bytes``: no copy), else a copy."""
    if type(data) is bytes:
        return data
    if type(data) is memoryview and type(data.obj) is bytes and data.format == "B":
        return data
    return bytes(data)


def _write_pending(s: TLSState, pending: bytes | memoryview) -> int:
    """Send the rest of the pending write ``pending`` (run by ``s._ssl``); done if
    another call finished it meanwhile."""
    if s._pending is not pending:
        return len(pending)
    if not _sent(s):
        raise want_write()
    s._pending = None
    return len(pending)


async def _finish(
    waiter: Waiter, s: TLSState, pending: bytes | memoryview, deadline: _Deadline
) -> None:
    """Complete the interrupted write ``pending``."""
    await call(waiter, s, TLS_WRITE, WRITE_TIMEOUT, _write_pending, s, pending, deadline=deadline)


def _starts_with(data: Any, prefix: bytes | memoryview) -> bool:
    with memoryview(data) as view, view.cast("B") as view:
        return len(view) >= len(prefix) and view[: len(prefix)] == prefix


async def _send(waiter: Waiter, s: TLSState, data: Any, deadline: _Deadline) -> int:
    """Write ``data`` (at most one SSL write of it); return the count written."""
    while True:
        pending = s._pending
        if pending is not None:
            # The stdlib's retry: the same bytes again (after SSLWantWriteError,
            # a timeout or a cancellation). They were written: count them as this call's.
            same = _starts_with(data, pending)
            await _finish(waiter, s, pending, deadline)
            if same:
                return len(pending)
            continue
        n = await call(waiter, s, TLS_WRITE, WRITE_TIMEOUT, _write_new, s, data, deadline=deadline)
        if n != _BUSY:
            return n


async def send(waiter: Waiter, s: TLSState, data: Any, flags: int = 0) -> int:
    """Send plaintext; return the count sent (all of ``data`` unless a pending write
    was finished first: then that write's length)."""
    if flags or s._sock._sslobj is None:  # type: ignore[attr-defined]
        # The stdlib's ValueError for flags; once closed, its EBADF.
        return s._ssl(s._sock.send, data, flags)
    return await _send(waiter, s, data, _Deadline(waiter))


async def sendall(waiter: Waiter, s: TLSState, data: Any, flags: int = 0) -> None:
    """Send all of ``data``; one deadline for the whole call."""
    if flags or s._sock._sslobj is None:  # type: ignore[attr-defined]
        s._ssl(s._sock.sendall, data, flags)  # the stdlib's ValueError (or EBADF)
        return
    deadline = _Deadline(waiter)
    with memoryview(data) as view, view.cast("B") as view:
        total = len(view)
        sent = 0
        while sent < total:
            sent += await _send(waiter, s, view[sent : sent + WRITE_BLOCK], deadline)


async def sendfile(
    waiter: Waiter, s: TLSState, file: Any, offset: int = 0, count: int | None = None
) -> int:
    """Send a file through TLS: read it in blocks, send each (the stdlib's send loop:
    the timeout applies to each block). Returns the byte count; the file position
    ends after the last byte sent."""
    sock = s._sock
    if sock._sslobj is None:  # type: ignore[attr-defined]
        raise ebadf() if sock.fileno() == -1 else ValueError("not a TLS connection")
    sock._check_sendfile_params(file, offset, count)  # type: ignore[attr-defined]
    if s._timeout == 0.0:
        raise ValueError("non-blocking sockets are not supported")
    if offset:
        file.seek(offset)
    total = 0
    try:
        while count is None or total < count:
            size = WRITE_BLOCK if count is None else min(WRITE_BLOCK, count - total)
            block = file.read(size)
            if not block:
                break
            await sendall(waiter, s, block)
            total += len(block)
        return total
    finally:
        if total > 0 and hasattr(file, "seek"):
            file.seek(offset + total)


# -- building a TLS socket -------------------------------------------------------------


def _new_inner(
    sock: socket.socket,
    context: ssl.SSLContext,
    server_side: bool,
    server_hostname: str | bytes | None,
    suppress_ragged_eofs: bool,
    session: ssl.SSLSession | None,
) -> ssl.SSLSocket:
    """What ``context.wrap_socket(sock, do_handshake_on_connect=False, ...)`` does, with
    the stdlib's own class (bound at import: a program may point
    ``SSLContext.sslsocket_class`` at asocket, as gevent-style patching does); the
    SSL object on a :class:`Wire`."""
    inner: ssl.SSLSocket = _StdlibSSLSocket._create(  # type: ignore[attr-defined]
        sock=sock,
        server_side=server_side,
        do_handshake_on_connect=False,
        suppress_ragged_eofs=suppress_ragged_eofs,
        server_hostname=server_hostname,
        context=context,
        session=session,
    )
    use_wire(inner)
    return inner


def wrap_inner(
    sock: Any,
    context: ssl.SSLContext,
    server_side: bool,
    server_hostname: str | bytes | None,
    suppress_ragged_eofs: bool,
    session: ssl.SSLSession | None,
    do_handshake_on_connect: bool = True,
) -> ssl.SSLSocket:
    """The stdlib's ``SSLSocket`` (no handshake, non-blocking) on the descriptor of
    the face socket ``sock``, which is detached on success.

    The stdlib's own checks run (``NotImplementedError`` for a non-stream socket,
    ``ValueError`` for the hostname and session rules); when they refuse, ``sock``
    is left as it was.
    """
    raw = sock._sock
    fd = raw.fileno()
    if fd == -1:
        raise ebadf()
    shadow = socket.socket(raw.family, raw.type, raw.proto, fileno=fd)
    shadow.setblocking(False)
    try:
        inner = _new_inner(
            shadow, context, server_side, server_hostname, suppress_ragged_eofs, session
        )
    except BaseException:
        if shadow.fileno() != -1:  # refused before taking the descriptor over
            shadow.detach()
            raw.settimeout(raw.gettimeout())  # the descriptor's flag as sock had it
        else:  # the stdlib took the descriptor and dropped it: so does sock
            sock.detach()
        raise
    sock.detach()  # the face socket lets go (unregistered, nothing closed)
    # The inner socket never connects nor handshakes by itself; the attribute says
    # what the face does (connect(), accept()).
    inner.do_handshake_on_connect = do_handshake_on_connect  # type: ignore[attr-defined]
    return inner


def wrap(
    make: Callable[[ssl.SSLSocket, float | None], S],
    sock: Any,
    context: ssl.SSLContext,
    server_side: bool,
    server_hostname: str | bytes | None,
    do_handshake_on_connect: bool,
    suppress_ragged_eofs: bool,
    session: ssl.SSLSession | None,
) -> tuple[S, bool]:
    """``wrap_socket`` up to the handshake, for both faces: the face's TLS socket
    (``make(inner, timeout)``) on ``sock``'s descriptor, in ``sock``'s mode, ``sock``
    detached; and whether the handshake is due now (``do_handshake_on_connect`` on a
    connected socket). In non-blocking mode that raises ``ValueError``, as the
    stdlib; the TLS socket is then closed."""
    timeout = sock.gettimeout()
    inner = wrap_inner(
        sock,
        context,
        server_side,
        server_hostname,
        suppress_ragged_eofs,
        session,
        do_handshake_on_connect,
    )
    tls = make(inner, timeout)
    if not (do_handshake_on_connect and connected(inner)):
        return tls, False
    try:
        check_no_blocking_handshake(timeout)
    except BaseException:
        tls.close()
        raise
    return tls, True


def connected(inner: ssl.SSLSocket) -> bool:
    """Whether ``inner`` has its SSL object (the stdlib makes it once connected)."""
    return inner._sslobj is not None  # type: ignore[attr-defined]


def drop_ssl(inner: ssl.SSLSocket) -> None:
    """Forget the SSL object before the descriptor is closed or detached (as the
    stdlib's own close does): later calls see a closed socket, none reaches OpenSSL
    with a descriptor number that may be reused. Sends nothing."""
    inner._sslobj = None  # type: ignore[attr-defined]


def check_no_blocking_handshake(timeout: float | None) -> None:
    """The stdlib refuses do_handshake_on_connect in non-blocking mode."""
    if timeout == 0.0:
        raise ValueError("do_handshake_on_connect should not be specified for non-blocking sockets")


class TLSMethods:
    """The plain (non-waiting) calls and attributes both faces' TLS sockets share,
    each the stdlib ``SSLSocket``'s on the inner socket (under ``_ssl``)."""

    __slots__ = ()

    _sock: ssl.SSLSocket

    def _ssl(self, fn: Callable[..., T], /, *args: Any) -> T:
        return fn(*args)

    @property
    def _sslobj(self) -> Any:
        """The inner socket's SSL object, for code that reaches into the stdlib's
        ``SSLSocket._sslobj`` (CPython's own tests do); None once closed."""
        return self._sock._sslobj  # type: ignore[attr-defined]

    @property
    def context(self) -> ssl.SSLContext:
        """The ``ssl.SSLContext`` this socket uses (settable, as the stdlib's)."""
        return self._sock.context

    @context.setter
    def context(self, ctx: ssl.SSLContext) -> None:
        self._ssl(setattr, self._sock, "context", ctx)

    @property
    def server_side(self) -> bool:
        """True for the server end of the connection."""
        return self._sock.server_side

    @property
    def server_hostname(self) -> str | None:
        """The peer's host name given to ``wrap_socket`` (SNI, verification), or None."""
        return self._sock.server_hostname

    @property
    def do_handshake_on_connect(self) -> bool:
        """Whether the handshake is done on connect (as given to ``wrap_socket``)."""
        return self._sock.do_handshake_on_connect  # type: ignore[attr-defined, no-any-return]

    @property
    def suppress_ragged_eofs(self) -> bool:
        """Whether an EOF without close_notify reads as ``b''`` (else ``SSLEOFError``)."""
        return self._sock.suppress_ragged_eofs  # type: ignore[attr-defined, no-any-return]

    @property
    def session(self) -> ssl.SSLSession | None:
        """The TLS session (to resume it on another connection), or None."""
        return self._ssl(getattr, self._sock, "session")  # type: ignore[no-any-return]

    @session.setter
    def session(self, session: ssl.SSLSession | None) -> None:
        self._ssl(setattr, self._sock, "session", session)

    @property
    def session_reused(self) -> bool | None:
        """Whether the handshake resumed a session (None before there is one)."""
        return self._ssl(getattr, self._sock, "session_reused")  # type: ignore[no-any-return]

    def getpeercert(self, binary_form: bool = False) -> Any:
        """The peer's certificate (a dict, or DER bytes with ``binary_form=True``)."""
        return self._ssl(self._sock.getpeercert, binary_form)

    def cipher(self) -> tuple[str, str, int] | None:
        """``(name, protocol, secret bits)`` of the cipher in use, or None."""
        return self._ssl(self._sock.cipher)

    def shared_ciphers(self) -> list[tuple[str, str, int]] | None:
        """The ciphers both ends offered (server side), or None."""
        return self._ssl(self._sock.shared_ciphers)

    def compression(self) -> str | None:
        """The compression algorithm in use, or None."""
        return self._ssl(self._sock.compression)

    def version(self) -> str | None:
        """The protocol version (``'TLSv1.3'``...), or None before the handshake."""
        return self._ssl(self._sock.version)

    def selected_alpn_protocol(self) -> str | None:
        """The protocol ALPN selected, or None."""
        return self._ssl(self._sock.selected_alpn_protocol)

    def pending(self) -> int:
        """Decrypted bytes ready to be read without waiting."""
        return self._ssl(self._sock.pending)

    def get_channel_binding(self, cb_type: str = "tls-unique") -> bytes | None:
        """Channel binding data (RFC 5929), or None."""
        return self._ssl(self._sock.get_channel_binding, cb_type)

    def verify_client_post_handshake(self) -> None:
        """Request TLS 1.3 post-handshake authentication of the client (server side)."""
        self._ssl(self._sock.verify_client_post_handshake)

    if hasattr(ssl.SSLSocket, "get_verified_chain"):  # Python 3.13+

        def get_verified_chain(self) -> list[bytes]:
            """The verified certificate chain of the peer (DER), as the stdlib's."""
            chain: list[bytes] = self._ssl(cast(Any, self._sock).get_verified_chain)
            return chain

        def get_unverified_chain(self) -> list[bytes]:
            """The certificate chain the peer sent (DER), as the stdlib's."""
            chain: list[bytes] = self._ssl(cast(Any, self._sock).get_unverified_chain)
            return chain

    def dup(self) -> Any:
        """Not allowed on TLS sockets (``NotImplementedError``), as the stdlib's."""
        raise NotImplementedError(f"Can't dup() {type(self).__name__} instances")


def no_constructor(cls: type) -> TypeError:
    """What calling a TLS socket class raises: there is no public constructor."""
    return TypeError(
        f"{cls.__name__} does not have a public constructor. "
        "Instances are returned by wrap_socket()."
    )


# -- create_connection(ssl=...) and servers ---------------------------------------------

log = logging.getLogger("asocket")


def check_ssl_args(
    context: Any, server_hostname: str | None, ssl_handshake_timeout: float | None
) -> ssl.SSLContext | None:
    """The ``ssl=`` arguments of ``create_connection``/``serve_tcp``, checked as asyncio
    checks them; ``ssl=True`` means ``ssl.create_default_context()``."""
    if context is None or context is False:
        if server_hostname is not None:
            raise ValueError("server_hostname is only meaningful with ssl")
        if ssl_handshake_timeout is not None:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        return None
    if ssl_handshake_timeout is not None and ssl_handshake_timeout <= 0:
        raise ValueError(
            f"ssl_handshake_timeout should be a positive number, got {ssl_handshake_timeout}"
        )
    if context is True:
        return ssl.create_default_context()
    if not isinstance(context, ssl.SSLContext):
        raise TypeError(
            f"ssl must be an ssl.SSLContext, True or None, not {type(context).__name__}"
        )
    return context


def call_until(waiter: Waiter, timeout: Any) -> float | None:
    """The deadline of a call given ``timeout`` (the module's default timeout if not given)."""
    if timeout is socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
        timeout = _timeouts.getdefaulttimeout()
    return None if timeout is None else waiter.clock() + timeout


def handshake_deadline(
    waiter: Waiter, call_until: float | None, ssl_handshake_timeout: float | None
) -> float | None:
    """The handshake's deadline: the call's, or ``ssl_handshake_timeout`` from now if sooner."""
    if ssl_handshake_timeout is None:
        return call_until
    until = waiter.clock() + ssl_handshake_timeout
    return until if call_until is None else min(until, call_until)


async def handshake_new(
    waiter: Waiter,
    make: Callable[[ssl.SSLSocket, float | None], Any],
    sock: Any,
    context: ssl.SSLContext,
    server_side: bool,
    server_hostname: str | None,
    until: float | None,
) -> Any:
    """Wrap the connected face socket ``sock`` and do the handshake by ``until``;
    ``make(inner, timeout)`` builds the face's TLS socket. On any failure (or a
    cancellation) the socket is closed and the error raised."""
    timeout = sock.gettimeout()
    try:
        inner = wrap_inner(sock, context, server_side, server_hostname, True, None)
    except BaseException:
        sock.close()
        raise
    tls = make(inner, timeout)
    try:
        await do_handshake(waiter, tls, until)
    except BaseException:
        tls.close()
        raise
    return tls


def log_handshake_failure(address: Any, exc: BaseException) -> None:
    """One line, no traceback: a client's TLS handshake failed (or timed out)."""
    log.warning("TLS handshake with %r failed: %s", address, str(exc) or type(exc).__name__)


# -- the faces' inline first attempts ---------------------------------------------------


def try_send(s: TLSState, data: Any) -> int | None:
    """One inline attempt at a new write (the face holds the SSL lock, if any): the
    count written, or None: take the full path (:func:`send`)."""
    if s._pending is not None:
        return None
    result = e.attempt(s, TLS_WRITE, _write_new, (s, data))
    if type(result) is e.Wait or result == _BUSY:
        return None
    return result  # type: ignore[return-value]


def small(data: Any) -> bool:
    """Whether ``sendall(data)`` is one SSL write (bytes or bytearray, one block)."""
    return (type(data) is bytes or type(data) is bytearray) and len(data) <= WRITE_BLOCK


async def read(
    waiter: Waiter, s: TLSState, fn: Callable[..., T], args: tuple[Any, ...], size: int, flags: int
) -> T:
    """A plaintext read, ``fn(*args)`` (``recv``/``recv_into`` of at most ``size``
    bytes; ``0``: unknown), in the socket's mode, with the engine's read hint
    (``_engine.waits_first``): after a read that had to wait, if OpenSSL holds no plaintext,
    the wire no ciphertext, and the descriptor is not readable, wait *before* the
    first SSL read (a failed one costs an ``SSLWantReadError`` raised and caught)."""
    event: int | None = None
    if (
        s._waited  # (first: the usual case of a quick peer looks at nothing more)
        and type(flags) is int
        and not flags
        and not s._sock.pending()
        and not s._wire.incoming.pending
        and e.waits_first(s, size)
    ):
        event = READ
    else:
        try:  # the first attempt inline: the usual case costs one SSL call
            result: T = s._ssl(pump, s, fn, *args)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, InterruptedError) as exc:
            event = wait_for(s, exc)
    s._waited = event is not None
    if event is not None:
        return await read_rest(waiter, s, event, fn, args)
    return result


async def read_rest(
    waiter: Waiter, s: TLSState, event: int, fn: Callable[..., T], args: tuple[Any, ...]
) -> T:
    """The rest of a plaintext read ``fn(*args)`` whose first attempt said wait for
    ``event`` (both faces): wait, then the read, the descriptor read first after a
    wait for readability."""
    read = pump_fed if event == READ else pump
    return await retry(waiter, s, TLS_READ, READ_TIMEOUT, read, (s, fn, *args), event)


def wait_for(s: TLSState, exc: BaseException) -> int:
    """After an inline attempt raised ``exc`` (``SSLWant*Error``, ``InterruptedError``):
    the readiness to wait for; re-raises ``SSLWant*Error`` in non-blocking mode."""
    if isinstance(exc, InterruptedError):
        return e.TRY  # tried again at once (a wait must follow a call that would block)
    if s._timeout == 0.0:
        raise exc
    return READ if isinstance(exc, ssl.SSLWantReadError) else WRITE


# -- connect() on a socket wrapped before it was connected ----------------------------


async def connect(waiter: Waiter, s: TLSState, address: Any, ex: bool) -> int:
    """``connect``/``connect_ex`` on a TLS socket wrapped unconnected, as the stdlib's:
    the plain connect (the engine's, in the mode), then the SSL object, then the
    handshake if ``do_handshake_on_connect``. Returns the errno (``ex``) or 0."""
    inner = s._sock
    if inner.server_side:
        raise ValueError("can't connect in server-side mode")
    if inner._connected or inner._sslobj is not None:  # type: ignore[attr-defined]
        raise ValueError("attempt to connect already-connected SSLSocket!")
    fd = inner.fileno()
    if fd == -1:
        raise ebadf()
    # The engine connects through s._sock: a plain socket on the same descriptor,
    # for the time of the connect (the stdlib's SSLSocket.connect would wrap at once).
    plain = socket.socket(inner.family, inner.type, inner.proto, fileno=fd)
    plain.setblocking(False)
    s._sock = plain  # type: ignore[assignment]
    try:
        err = await e.connect(waiter, s, address, ex)
    finally:
        s._sock = inner
        plain.detach()
    if err and not ex:
        return err
    # connect_ex keeps the SSL object whatever it returns, as the stdlib's (a
    # non-blocking caller then waits for writability and calls do_handshake()).
    fd = inner.detach()  # unconnected, it has no SSL object: wrap the descriptor anew
    fresh = socket.socket(inner.family, inner.type, inner.proto, fileno=fd)
    fresh.setblocking(False)
    s._sock = _new_inner(
        fresh,
        inner.context,
        False,
        inner.server_hostname,
        inner.suppress_ragged_eofs,  # type: ignore[attr-defined]
        inner._session,  # type: ignore[attr-defined]
    )
    s._sock.do_handshake_on_connect = inner.do_handshake_on_connect  # type: ignore[attr-defined]
    s._wire = wire_of(s._sock)
    if err:  # still connecting (or failed): the SSL object as the stdlib's connect_ex makes it
        fresh_inner = s._sock
        if fresh_inner._sslobj is None:  # type: ignore[attr-defined]
            fresh_inner._sslobj = fresh_inner.context._wrap_socket(  # type: ignore[attr-defined]
                fresh_inner,
                False,
                fresh_inner.server_hostname,
                owner=fresh_inner,
                session=fresh_inner._session,  # type: ignore[attr-defined]
            )
            s._wire = use_wire(fresh_inner)
        return err
    if inner.do_handshake_on_connect:  # type: ignore[attr-defined]
        await do_handshake(waiter, s)
    return 0
