"""Buffered files on the async face: ``sock.makefile("rb" | "wb" | "rwb")``.

Two layers, as everywhere in asocket:

* :class:`ReadBuffer`, the sans-IO core: a reused ``bytearray`` that the
  socket receives into (``recv_into`` its free tail, through a cached
  ``memoryview``), searched with ``bytearray.find`` from the last offset
  already scanned (no rescans while a long line arrives), compacted or grown
  only when its tail runs short. While lines are read one after another it
  splits the next 16 KiB of lines at once (``splitlines``), so a line costs a
  ``list.pop()``. It knows nothing of sockets or loops and is tested with fakes.
* :class:`AsyncSocketFile`, the awaitable file: each method is one coroutine
  whose fast path (the answer is already buffered) never leaves the buffer;
  its slow path receives through the engine with one deadline for the whole
  call, so the socket's mode (blocking, non-blocking, timeout) applies per
  call and a timeout, a ``BlockingIOError`` or a cancellation leaves every
  received byte in the buffer for the next call.

Receiving goes through ``recv_into`` of the socket's raw ``_sock`` (and
``recv`` for a big ``read(n)`` with nothing buffered: the result itself),
sending through its ``send``, each by the engine's ``io_until``. A socket class
may route them itself instead (``_file_recv_into`` / ``_file_send``, see
:func:`_transports`): a TLS socket does (its raw reads and writes go through
``_tls.pump`` and its write queue), and then big reads fill the buffer too.
"""

from __future__ import annotations

import errno
import io
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, Protocol, Self, TypeVar

from . import _engine as e
from ._ops import RECV, RECV_INTO, SEND, Op
from ._waiters.base import Waiter
from ._waiters.current import current

if TYPE_CHECKING:
    from typing_extensions import Buffer
else:
    Buffer = Any

T = TypeVar("T")

DEFAULT_BUFFER_SIZE: Final = 65536
"""The read buffer's size when ``buffering`` is not given (it grows for longer lines or frames)."""

DEFAULT_MAX_BYTES: Final = 65536
"""``readuntil()``'s default ``max_bytes``."""

_NL: Final = b"\n"
_CACHE_MIN: Final = 256  # split ahead only with at least this much buffered after a line
_CACHE_SPAN: Final = 16384  # and at most this much at once
_DIRECT: Final = 16384  # read(n) of at least this much, nothing buffered: recv(n) directly
_TEXT_MODE = (
    "asocket's async makefile() is binary only: use mode 'rb', 'wb' or 'rwb' "
    "and decode what you read (line.decode()); encode what you write"
)


class IncompleteReadError(EOFError):
    """End of file before ``readexactly()`` or ``readuntil()`` could complete.

    ``partial``: the bytes read before the end of file (taken from the buffer);
    ``expected``: how many bytes were asked for (``None`` for ``readuntil``).
    """

    def __init__(self, partial: bytes, expected: int | None) -> None:
        wanted = "undefined" if expected is None else repr(expected)
        super().__init__(f"{len(partial)} bytes read on a total of {wanted} expected bytes")
        self.partial = partial
        self.expected = expected

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.partial, self.expected)


class LimitOverrunError(ValueError):
    """``readuntil()`` found no separator within ``max_bytes``; nothing was consumed.

    ``consumed``: how many bytes the buffer held when the limit was reached.
    """

    def __init__(self, message: str, consumed: int) -> None:
        super().__init__(message)
        self.consumed = consumed

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.args[0], self.consumed)


# -- the sans-IO core -----------------------------------------------------------


class ReadBuffer:
    """A receive buffer: bytes ``[start, end)`` of a reused ``bytearray`` are unread.

    ``space()`` gives the free tail to receive into, ``received(n)`` records
    what arrived there; the ``take*``/``line``/``until`` methods return unread
    bytes and consume them. Consuming never moves the unread bytes (so a tail
    handed to a receive stays valid); only ``space()`` compacts or grows.
    """

    __slots__ = ("_buf", "_end", "_key", "_lines", "_scan", "_size", "_start", "_streak", "_view")

    def __init__(self, size: int = DEFAULT_BUFFER_SIZE) -> None:
        if size < 1:
            raise ValueError("buffer size must be positive")
        self._size = size
        self._buf = bytearray(size)
        self._view = memoryview(self._buf)
        self._start = 0
        self._end = 0
        self._scan = 0  # [start, scan) holds no separator of _key (if scan > start)
        self._key: object = None
        # The line cache: while lines are read one after another, the next lines of the
        # buffer split at once (reversed: pop() gives the next). Any other way of
        # consuming drops it (_drop); _streak > 0 whenever it holds lines.
        self._lines: list[bytes] = []
        self._streak = 0  # lines read in a row by find(); 0 after any other read

    def __len__(self) -> int:
        return self._end - self._start

    @property
    def capacity(self) -> int:
        """The buffer's current size in bytes."""
        return len(self._buf)

    # -- receiving ------------------------------------------------------------

    def space(self, need: int = 1) -> memoryview:
        """The free tail to receive into: at least ``need`` bytes and a quarter of the buffer.

        Compacts the unread bytes to the front, or grows the buffer, when the tail
        is shorter. A view handed out earlier must not be in use any more.
        """
        start, end = self._start, self._end
        cap = len(self._buf)
        if start == end:
            if start:
                self._start = self._end = self._scan = 0
                end = 0
            if cap > self._size and need <= self._size:  # shrink back after a big frame
                self._buf = bytearray(self._size)
                self._view = memoryview(self._buf)
                cap = self._size
        want = max(need, cap >> 2)
        if cap - end >= want:
            return self._view[end:]
        n = end - start
        if cap - n >= want:  # compact: move the unread bytes to the front
            self._view[:n] = self._view[start:end]
        else:  # grow
            grown = bytearray(max(cap * 2, n + need))
            grown[:n] = self._view[start:end]
            self._buf = grown
            self._view = memoryview(grown)
        self._start = 0
        self._end = n
        self._scan -= start
        return self._view[n:]

    def received(self, n: int) -> None:
        """Record that ``n`` bytes were received into the tail ``space()`` returned."""
        self._end += n

    def unread(self, data: Buffer) -> None:
        """Put ``data`` back in front of the unread bytes (it will be read first)."""
        with memoryview(data) as view, view.cast("B") as view:
            n = len(view)
            if not n:
                return
            self._drop()
            start, end = self._start, self._end
            if start == end:
                start = end = 0
            have = end - start
            if start >= n:  # room in front
                start -= n
                self._view[start : start + n] = view
            elif len(self._buf) >= n + have:  # room behind: shift the unread bytes
                self._view[n : n + have] = self._view[start:end]
                self._view[:n] = view
                start, end = 0, n + have
            else:
                grown = bytearray(max(len(self._buf) * 2, n + have))
                grown[:n] = view
                grown[n : n + have] = self._view[start:end]
                self._buf = grown
                self._view = memoryview(grown)
                start, end = 0, n + have
            self._start, self._end = start, end
            self._scan = start
            self._key = None

    # -- consuming ------------------------------------------------------------

    def _drop(self) -> None:
        """Forget the line cache and the streak (bytes were consumed another way)."""
        self._streak = 0
        if self._lines:
            self._lines = []

    def next_line(self) -> bytes | None:
        """Remove and return the next line through ``b"\\n"``; None if none is whole."""
        lines = self._lines
        if lines:
            line = lines.pop()
            self._start += len(line)
            return line
        start = self._start
        i = self._buf.find(_NL, start, self._end)
        if i < 0:
            return None
        i += 1
        self._start = i
        self._streak += 1
        if self._streak > 2 and self._end - i >= _CACHE_MIN:
            self._split_lines()
        return self._view[start:i].tobytes()

    def _split_lines(self) -> None:
        """Fill the line cache with the whole lines of the next ``_CACHE_SPAN`` bytes."""
        start = self._start
        stop = min(self._end, start + _CACHE_SPAN)
        last = self._buf.rfind(_NL, start, stop)
        if last < 0:
            return
        chunk = self._view[start : last + 1].tobytes()
        if b"\r" in chunk and chunk.count(b"\r") != chunk.count(b"\r\n"):
            return  # a lone CR: splitlines() would end a line there
        lines = chunk.splitlines(True)
        lines.reverse()
        self._lines = lines

    def take(self, n: int) -> bytes:
        """Remove and return up to ``n`` unread bytes."""
        if self._streak:
            self._drop()
        start = self._start
        stop = start + n
        if stop > self._end:
            stop = self._end
        self._start = stop
        return self._view[start:stop].tobytes()

    def take_all(self) -> bytes:
        """Remove and return every unread byte."""
        return self.take(self._end - self._start)

    def peek(self) -> bytes:
        """Every unread byte, left unread."""
        return self._view[self._start : self._end].tobytes()

    def take_into(self, target: memoryview) -> int:
        """Move up to ``len(target)`` unread bytes into ``target``; return the count."""
        if self._streak:
            self._drop()
        start = self._start
        n = min(len(target), self._end - start)
        target[:n] = self._view[start : start + n]
        self._start = start + n
        return n

    def line(self, size: int = -1) -> bytes | None:
        """Remove and return a line (through ``b"\\n"``), or ``size`` bytes if ``size >= 0``
        and no line ends sooner; ``None`` if more must be received first."""
        if self._streak:
            self._drop()
        start = self._start
        end = self._end
        if size == 0:
            return b"" if end >= start else None
        scan = self._scan
        if scan < start or self._key is not _NL:
            self._key = _NL
            scan = start
        if size >= 0 and start + size < end:
            end = start + size
            i = self._buf.find(_NL, scan, end)
            if i < 0:
                return self.take(size)
        else:
            i = self._buf.find(_NL, scan, end)
            if i < 0:
                self._scan = end
                return None
        i += 1
        self._start = self._scan = i
        return self._view[start:i].tobytes()

    def until(self, seps: tuple[bytes, ...], longest: int, max_bytes: int) -> bytes | None:
        """Remove and return the bytes through the first of ``seps`` to end (the shortest
        such prefix); ``None`` if more must be received first.

        ``longest``: the longest separator's length. Raises :class:`LimitOverrunError`
        (consuming nothing) when ``max_bytes`` bytes are buffered and no separator
        ends within them.
        """
        if self._streak:
            self._drop()
        start = self._start
        end = self._end
        key = seps[0] if len(seps) == 1 else seps
        scan = self._scan
        if scan < start or self._key != key:
            self._key = key
            scan = start
        stop = min(end, start + max_bytes)
        buf = self._buf
        best = -1
        for sep in seps:
            i = buf.find(sep, scan, stop)
            if i >= 0:
                i += len(sep)
                if best < 0 or i < best:
                    best = i
        if best >= 0:
            self._start = self._scan = best
            return self._view[start:best].tobytes()
        self._scan = max(scan, stop - longest + 1)
        if end - start >= max_bytes:
            raise LimitOverrunError(
                f"no separator found within max_bytes={max_bytes} bytes "
                "(the buffer keeps them; pass a larger max_bytes to allow longer)",
                end - start,
            )
        return None


def separators(separator: Any) -> tuple[tuple[bytes, ...], int]:
    """``readuntil``'s ``separator`` (bytes-like or a tuple of them) as a tuple of bytes,
    and the longest one's length. Raises ``ValueError`` for an empty one."""
    if isinstance(separator, tuple):
        seps = tuple(bytes(s) for s in separator)
        if not seps:
            raise ValueError("Separator should contain at least one element")
    else:
        seps = (bytes(separator),)
    if not all(seps):
        raise ValueError("Separator should be at least one-byte string")
    return seps, max(map(len, seps))


# -- the I/O shell -----------------------------------------------------------------


class _FileSocket(e.State, Protocol):
    """What a file needs of its socket (``asocket.socket`` or ``asocket.SSLSocket``):
    the engine's state and the stdlib's ``makefile()`` reference count."""

    _io_refs: int

    def _decref_socketios(self) -> None: ...
    def fileno(self) -> int: ...


async def _io(
    waiter: Waiter, s: _FileSocket, op: Op, deadline: float | None, fn: Callable[..., T], *args: Any
) -> T:
    """The engine's ``io_until``: ``fn(*args)``, waiting for ``op.event`` while it would
    block, until ``deadline`` (the file call's one deadline). Non-blocking mode raises
    ``BlockingIOError`` at once, on a TLS socket too (where the stdlib raises
    ``SSLWantReadError``/``SSLWantWriteError``)."""
    try:
        return await e.io_until(waiter, s, op, deadline, fn, *args)
    except BlockingIOError:
        raise
    except OSError as exc:
        if _would_block(exc):  # SSLWantReadError / SSLWantWriteError: non-blocking TLS
            raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN)) from exc
        raise


class _Transport(Protocol):
    """How a file receives and sends on its socket, under the call's one deadline."""

    def __call__(
        self, waiter: Waiter, until: float | None, view: memoryview, /
    ) -> Awaitable[int]: ...


def _transports(sock: _FileSocket) -> tuple[_Transport, _Transport]:
    """The receive and send of ``sock``'s files: the engine's ``io_until`` on the raw
    socket, unless the socket's class routes them itself (``_file_recv_into`` and
    ``_file_send``, same arguments: a TLS socket may, to keep its own write guard)."""
    recv_into = _converting(getattr(sock, "_file_recv_into", None))
    send = _converting(getattr(sock, "_file_send", None))
    if recv_into is None:

        def recv_into(waiter: Waiter, until: float | None, view: memoryview, /) -> Awaitable[int]:
            return _io(waiter, sock, RECV_INTO, until, sock._sock.recv_into, view, len(view))

    if send is None:

        def send(waiter: Waiter, until: float | None, view: memoryview, /) -> Awaitable[int]:
            return _io(waiter, sock, SEND, until, sock._sock.send, view)

    return recv_into, send


def _converting(hook: _Transport | None) -> _Transport | None:
    """A socket's own transport ``hook``, raising ``BlockingIOError`` where it raises
    ``SSLWantReadError``/``SSLWantWriteError`` (non-blocking TLS), as :func:`_io` does."""
    if hook is None:
        return None

    async def converted(waiter: Waiter, until: float | None, view: memoryview, /) -> int:
        try:
            return await hook(waiter, until, view)
        except BlockingIOError:
            raise
        except OSError as exc:
            if _would_block(exc):
                raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN)) from exc
            raise

    return converted


def _would_block(exc: OSError) -> bool:
    """True for what a receive raises when nothing has arrived yet (or a signal came)."""
    if isinstance(exc, (BlockingIOError, InterruptedError)):
        return True
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(exc, (ssl.SSLWantReadError, ssl.SSLWantWriteError))


def _dead() -> ReadBuffer:
    """The read buffer of a file that cannot read (write-only or closed): it claims
    ``-1`` bytes, so every fast path fails and the slow path raises."""
    rb = ReadBuffer(1)
    rb._end = -1
    return rb


def _closed_file() -> ValueError:
    return ValueError("I/O operation on closed file.")


class AsyncSocketFile:
    """An awaitable binary file on a socket, made by ``sock.makefile("rb" | "wb" | "rwb")``.

    Reads come from a buffer the socket receives into; writes are buffered
    until ``flush()`` (or until the buffer fills). Each call applies the
    socket's mode with one deadline for the whole call: non-blocking mode raises
    ``BlockingIOError``, timeout mode ``TimeoutError('timed out')``; either way,
    and on cancellation, what was received stays buffered for the next call.
    One task reads at a time (a second waiting reader raises ``RuntimeError``).
    """

    __slots__ = (
        "__weakref__",
        "_closed",
        "_direct",
        "_filling",
        "_flushing",
        "_rb",
        "_reading",
        "_recv_into",
        "_s",
        "_send",
        "_sep",
        "_seps",
        "_wchunks",
        "_wdata",
        "_wlimit",
        "_wpos",
        "_writing",
        "_wsize",
        "mode",
    )

    def __init__(
        self,
        sock: Any,
        mode: str = "rb",
        buffering: int | None = None,
        *,
        text: tuple[str | None, str | None, str | None] = (None, None, None),
    ) -> None:
        if not set(mode) <= {"r", "w", "b"}:
            raise ValueError(f"invalid mode {mode!r} (only r, w, b allowed)")
        if "b" not in mode or text != (None, None, None):
            raise ValueError(_TEXT_MODE)
        self._reading = "r" in mode
        self._writing = "w" in mode
        if not (self._reading or self._writing):
            raise ValueError(f"invalid mode {mode!r}: 'r', 'w' or both")
        if buffering is None or buffering < 0:
            size, wlimit = DEFAULT_BUFFER_SIZE, DEFAULT_BUFFER_SIZE
        elif buffering == 0:
            size, wlimit = DEFAULT_BUFFER_SIZE, 0
        else:
            size, wlimit = buffering, buffering
        self.mode = ("r" if self._reading else "") + ("w" if self._writing else "") + "b"
        self._s: _FileSocket = sock
        self._recv_into, self._send = _transports(sock)
        # Big reads straight from the raw socket, unless the socket routes its receive
        # itself (a TLS socket: its raw socket's reads need the engine's pump).
        self._direct = _DIRECT if getattr(sock, "_file_recv_into", None) is None else sys.maxsize
        self._rb = ReadBuffer(size) if self._reading else _dead()
        self._filling = False
        self._flushing = False
        self._sep: object = _NL  # readuntil's last separator argument, checked: _seps
        self._seps: tuple[tuple[bytes, ...], int] = ((_NL,), 1)
        self._wchunks: list[bytes] = []
        self._wsize = 0
        self._wlimit = wlimit
        self._wdata = b""
        self._wpos = 0
        self._closed = False
        sock._io_refs += 1

    # -- the file's state ------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._closed

    @property
    def name(self) -> int:
        """The socket's descriptor (``-1`` once closed), as the stdlib's ``SocketIO.name``."""
        return -1 if self._closed else self._s.fileno()

    def fileno(self) -> int:
        """The socket's descriptor; ``ValueError`` once the file is closed."""
        if self._closed:
            raise _closed_file()
        return self._s.fileno()

    def readable(self) -> bool:
        """True if the file was opened for reading."""
        if self._closed:
            raise _closed_file()
        return self._reading

    def writable(self) -> bool:
        """True if the file was opened for writing."""
        if self._closed:
            raise _closed_file()
        return self._writing

    def seekable(self) -> bool:
        """False: a socket cannot seek."""
        if self._closed:
            raise _closed_file()
        return False

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<asocket.AsyncSocketFile mode={self.mode!r} fd={self.name}{state}>"

    # -- receiving -------------------------------------------------------------

    def _check_read(self) -> None:
        if self._closed:
            raise _closed_file()
        if not self._reading:
            raise io.UnsupportedOperation("File not open for reading")

    def _begin(self) -> tuple[Waiter, float | None]:
        """Start the slow path of a call: the waiter and the call's one deadline."""
        self._check_read()
        if self._filling:
            raise RuntimeError("another task is already waiting to read this file")
        s = self._s
        waiter = current()
        timeout = s._timeout
        return waiter, None if timeout is None or timeout == 0.0 else waiter.clock() + timeout

    async def _fill(self, waiter: Waiter, deadline: float | None, need: int = 1) -> int:
        """Receive once into the buffer (at least ``need`` bytes of room); 0 at end of file."""
        rb = self._rb
        view = rb.space(need)
        self._filling = True
        try:
            n = await self._recv_into(waiter, deadline, view)
        finally:
            self._filling = False
        rb.received(n)
        return n

    async def read(self, n: int | None = -1) -> bytes:
        """Read ``n`` bytes, fewer only at end of file (``n < 0`` or None: until end of file).

        Returns ``b""`` at end of file. Raises ``BlockingIOError`` / ``TimeoutError``
        (per the socket's mode) with nothing consumed.
        """
        rb = self._rb
        if n is not None:
            start = rb._start
            stop = start + n
            if start <= stop <= rb._end:  # buffered (never for a closed file: end < 0)
                rb._start = stop
                if rb._streak:
                    rb._drop()
                return rb._view[start:stop].tobytes()
            if start == rb._end and n >= self._direct and not self._filling:
                # Nothing buffered and a big read: receive into a new bytes object, which
                # is the result itself when the whole of it is there (no copy, no wait).
                try:
                    data = self._s._sock.recv(n)
                except OSError as exc:
                    if not _would_block(exc):
                        raise
                else:
                    if len(data) == n or not data:
                        return data
                    rb.unread(data)
        waiter, deadline = self._begin()
        if n is None or n < 0:
            while await self._fill(waiter, deadline):
                pass
            return rb.take_all()
        if rb._start == rb._end and n >= self._direct:
            # (As above, once the socket is readable.)
            s = self._s
            self._filling = True
            try:
                data = await _io(waiter, s, RECV, deadline, s._sock.recv, n)
            finally:
                self._filling = False
            if len(data) == n or not data:
                return data
            rb.unread(data)
        while rb._end - rb._start < n:
            if not await self._fill(waiter, deadline, n - (rb._end - rb._start)):
                break
        return rb.take(n)

    async def read1(self, n: int = -1) -> bytes:
        """Read up to ``n`` bytes (``n < 0``: any number) with at most one receive.

        Returns what the buffer holds if it holds any, else what one receive
        brings; ``b""`` at end of file.
        """
        rb = self._rb
        if rb._end > rb._start:
            return rb.take(n if n >= 0 else rb._end - rb._start)
        if n == 0:
            self._check_read()
            return b""
        waiter, deadline = self._begin()
        await self._fill(waiter, deadline)
        return rb.take(n if n >= 0 else rb._end - rb._start)

    async def readinto(self, b: Buffer) -> int:
        """Read into ``b`` until it is full or end of file; return the count.

        Receives straight into ``b`` once the buffer is empty; on a timeout, a
        ``BlockingIOError`` or a cancellation the bytes already in ``b`` go back
        into the buffer, so nothing is lost.
        """
        self._check_read()
        if self._filling:
            raise RuntimeError("another task is already waiting to read this file")
        with memoryview(b) as mv, mv.cast("B") as view:
            rb = self._rb
            want = len(view)
            got = rb.take_into(view)
            if got == want:
                return got
            if not got:  # nothing was buffered: try at once, straight into b
                try:
                    got = self._s._sock.recv_into(view, want)
                except OSError as exc:
                    if not _would_block(exc):
                        raise
                else:
                    if got == want or not got:
                        return got
            try:
                waiter, deadline = self._begin()
                self._filling = True
                while got < want:
                    n = await self._recv_into(waiter, deadline, view[got:])
                    if not n:
                        break
                    got += n
            except BaseException:
                rb.unread(view[:got])
                raise
            finally:
                self._filling = False
            return got

    async def readinto1(self, b: Buffer) -> int:
        """Read into ``b`` with at most one receive (as ``read1``); return the count."""
        self._check_read()
        with memoryview(b) as mv, mv.cast("B") as view:
            rb = self._rb
            if rb._end > rb._start or not len(view):
                return rb.take_into(view)
            waiter, deadline = self._begin()
            self._filling = True
            try:
                n = await self._recv_into(waiter, deadline, view)
            finally:
                self._filling = False
            return n

    async def readline(self, size: int | None = -1) -> bytes:
        """Read one line, through ``b"\\n"`` (at most ``size`` bytes if ``size >= 0``).

        Returns the last, unterminated line at end of file, then ``b""``. No
        length limit without ``size``, as the stdlib's; ``readuntil`` has one.
        """
        rb = self._rb
        if size is None or size < 0:
            size = -1
            lines = rb._lines
            if lines:  # the line cache
                cached = lines.pop()
                rb._start += len(cached)
                return cached
            line = rb.next_line()  # (never a line for a closed file: end < 0)
        else:
            line = rb.line(size)
        if line is not None:
            return line
        waiter, deadline = self._begin()
        while True:
            if not await self._fill(waiter, deadline):
                return rb.take_all()
            line = rb.line(size)
            if line is not None:
                return line

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        """The next line (``readline()``); ``StopAsyncIteration`` at end of file."""
        rb = self._rb
        lines = rb._lines
        if lines:  # the line cache
            cached = lines.pop()
            rb._start += len(cached)
            return cached
        line = rb.next_line()  # (never a line for a closed file: end < 0)
        if line is not None:
            return line
        waiter, deadline = self._begin()
        while True:
            if not await self._fill(waiter, deadline):
                rest = rb.take_all()
                if not rest:
                    raise StopAsyncIteration
                return rest
            line = rb.line()
            if line is not None:
                return line

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes.

        Raises :class:`IncompleteReadError` at end of file (its ``partial`` holds
        the bytes read, which are consumed), ``ValueError`` if ``n < 0``.
        """
        rb = self._rb
        start = rb._start
        stop = start + n
        if start <= stop <= rb._end:  # buffered (never for a closed file: end < 0)
            rb._start = stop
            if rb._streak:
                rb._drop()
            return rb._view[start:stop].tobytes()
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        waiter, deadline = self._begin()
        while rb._end - rb._start < n:
            if not await self._fill(waiter, deadline, n - (rb._end - rb._start)):
                raise IncompleteReadError(rb.take_all(), n)
        return rb.take(n)

    async def readuntil(
        self, separator: Buffer | tuple[Buffer, ...] = b"\n", max_bytes: int = DEFAULT_MAX_BYTES
    ) -> bytes:
        """Read through ``separator`` (or the first to end of a tuple of separators).

        ``max_bytes`` counts the separator: if that many bytes are buffered with
        no separator ending within them, :class:`LimitOverrunError` (a
        ``ValueError``) is raised at once and the bytes stay buffered. At end of
        file, :class:`IncompleteReadError` with the bytes read (consumed).
        """
        seps: tuple[bytes, ...]
        if separator is self._sep:  # the same object as last time: already checked
            seps, longest = self._seps
        else:
            seps, longest = separators(separator)
            if type(separator) is bytes or type(separator) is tuple:  # immutable
                self._sep = separator
                self._seps = seps, longest
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        rb = self._rb
        if not self._reading:
            self._check_read()
        data = rb.until(seps, longest, max_bytes)
        if data is not None:
            return data
        waiter, deadline = self._begin()
        while True:
            if not await self._fill(waiter, deadline):
                raise IncompleteReadError(rb.take_all(), None)
            data = rb.until(seps, longest, max_bytes)
            if data is not None:
                return data

    async def peek(self, n: int = 0) -> bytes:
        """The buffered bytes, left unread; if none, what one receive brings (``b""`` at
        end of file). May be more or fewer than ``n`` bytes, as ``io.BufferedReader.peek``."""
        rb = self._rb
        if rb._end == rb._start:
            waiter, deadline = self._begin()
            await self._fill(waiter, deadline)
        elif not self._reading:
            self._check_read()
        return rb.peek()

    def take_buffered(self) -> bytes:
        """Remove and return every byte the read buffer holds, without receiving.

        For a protocol upgrade (STARTTLS) or to hand the connection to another
        parser: the socket's next receive continues right after these bytes.
        """
        self._check_read()
        return self._rb.take_all()

    # -- sending -----------------------------------------------------------------

    def _check_write(self) -> None:
        if self._closed:
            raise _closed_file()
        if not self._writing:
            raise io.UnsupportedOperation("File not open for writing")

    async def write(self, b: Buffer) -> int:
        """Buffer ``b``; send the buffer once it holds ``buffering`` bytes. Returns ``len(b)``.

        ``b`` is accepted (buffered) even if sending then fails: a timeout, a
        ``BlockingIOError`` or a cancellation leaves the unsent bytes buffered
        for the next ``flush()``. While another task flushes, ``write()`` only
        buffers: that flush sends these bytes too.
        """
        self._check_write()
        data = bytes(b)
        n = len(data)
        if not n:
            return 0
        self._wchunks.append(data)
        self._wsize += n
        if self._wsize >= self._wlimit and not self._flushing:
            try:
                await self.flush()
            except BlockingIOError as exc:
                exc.characters_written = n
                raise
        return n

    async def writelines(self, lines: Any) -> None:
        """Write each bytes-like object of ``lines`` (no separators are added)."""
        for line in lines:
            await self.write(line)

    async def flush(self) -> None:
        """Send every buffered byte, with one deadline for the whole call.

        On a timeout, ``BlockingIOError`` or cancellation, the bytes not yet sent
        stay buffered (the sent ones are gone), so ``flush()`` can be called again.
        One task flushes at a time: ``RuntimeError`` while another one does.
        """
        self._check_write()
        if not self._wsize:
            return
        if self._flushing:
            raise RuntimeError("another task is already flushing this file")
        s = self._s
        waiter = current()
        timeout = s._timeout
        deadline = None if timeout is None or timeout == 0.0 else waiter.clock() + timeout
        self._flushing = True
        try:
            while True:
                data = self._wdata
                pos = self._wpos
                if pos >= len(data):  # what is being sent is sent: take what was written since
                    chunks = self._wchunks
                    if not chunks:
                        break
                    data = self._wdata = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                    chunks.clear()
                    self._wpos = pos = 0
                n = await self._send(waiter, deadline, memoryview(data)[pos:])
                self._wpos = pos + n
                self._wsize -= n
        finally:
            self._flushing = False
        self._wdata = b""
        self._wpos = 0

    # -- closing -------------------------------------------------------------------

    def close(self) -> None:
        """Close the file without flushing (unsent bytes are dropped). The socket's
        descriptor closes once the socket and every file made from it are closed."""
        if self._closed:
            return
        self._closed = True
        self._reading = self._writing = False
        self._rb = _dead()
        self._wchunks.clear()
        self._wdata = b""
        self._wsize = self._wpos = 0
        self._s._decref_socketios()

    async def aclose(self) -> None:
        """Flush (if writable), then close; closes even if the flush fails."""
        if self._closed:
            return
        try:
            if self._writing:
                await self.flush()
        finally:
            self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            self.close()

    def __getstate__(self) -> Any:
        raise TypeError(f"cannot pickle {type(self).__name__!r} object")


# The name users see (asocket.AsyncSocketFile).
AsyncSocketFile.__module__ = "asocket"


# -- under trio: every awaitable call a checkpoint ------------------------------------


def _checkpointed(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """``method``, made a checkpoint where the running library requires it (trio): a
    cancellation point before it and, if it completed without waiting (served from the
    buffer), a schedule point after it, as trio's own calls do."""

    async def call(self: AsyncSocketFile, *args: Any, **kwargs: Any) -> T:
        waiter = current()
        if not waiter.checkpoints:  # asyncio, in a program that imported trio
            return await method(self, *args, **kwargs)
        return await waiter.checkpointed(method(self, *args, **kwargs))

    call.__name__ = method.__name__
    call.__qualname__ = method.__qualname__
    call.__doc__ = method.__doc__
    return call


class CheckpointedFile(AsyncSocketFile):
    """An :class:`AsyncSocketFile` whose every awaitable call is a checkpoint, as trio
    requires (``makefile()`` makes these once the program has imported trio; a program
    without trio pays nothing for them)."""

    __slots__ = ()


for _name in (
    "read",
    "read1",
    "readinto",
    "readinto1",
    "readline",
    "__anext__",
    "readexactly",
    "readuntil",
    "peek",
    "write",
    "writelines",
    "flush",
    "aclose",
):
    setattr(CheckpointedFile, _name, _checkpointed(getattr(AsyncSocketFile, _name)))
del _name
