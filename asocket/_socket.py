"""The state and plain calls both faces' sockets share (``SocketBase``).

Everything here returns at once: attributes, options, names, modes, ``dup``,
construction from descriptors. The calls that may wait are the engine's
(``_engine``), and each face has one line per call on top of it.
"""

from __future__ import annotations

import _socket
import socket
import warnings
from typing import Any, NoReturn, Self

from . import _timeouts

# The stdlib's class and helpers, bound at import: a program or test harness may
# replace ``socket.socket`` with a face's class (as gevent-style patching does).
RawSocket = socket.socket
_dup = socket.dup
# The C-level socketpair: Lib/socket.py's wrapper builds ``socket.socket`` objects.
_socketpair = getattr(_socket, "socketpair", socket.socketpair)
close_fd = _socket.close  # closes a descriptor as the stdlib does (ECONNRESET ignored)
_SOCK_NONBLOCK = getattr(socket, "SOCK_NONBLOCK", 0)
_SHUT_RD = socket.SHUT_RD


class SocketBase:
    """The state and plain calls shared by ``asocket.socket`` and ``asocket.sync.socket``.

    State: ``_sock``, the raw stdlib socket that performs the syscalls and their
    argument checks; ``_timeout``, the mode; ``_closed`` and ``_io_refs``, as the
    stdlib's (``close()`` was called; files made by ``makefile()`` still open).
    A face supplies four hooks: ``_init_fd`` and ``_set_mode`` (what the raw
    descriptor's blocking flag must be for a mode), ``_real_close`` and
    ``_watcher`` (the waiter that will watch the descriptor, asked by the engine);
    and may supply a fifth, ``_wake_senders``.
    """

    __slots__ = (
        "__weakref__",
        "_closed",
        "_family",
        "_io_refs",
        "_probe",
        "_sock",
        "_timeout",
        "_waited",
    )

    _sock: socket.socket
    _timeout: float | None

    def __init__(
        self,
        family: int = -1,
        type: int = -1,
        proto: int = -1,
        fileno: int | None = None,
    ) -> None:
        raw = RawSocket(family, type, proto, fileno)
        self._sock = raw
        self._family = int(raw.family)
        self._waited = False  # the engine's read hint (_engine.waits_first) and its probe
        self._probe: Any = None
        self._closed = False
        self._io_refs = 0
        timeout = _timeouts.getdefaulttimeout()
        if _SOCK_NONBLOCK and type != -1 and type & _SOCK_NONBLOCK:
            timeout = 0.0  # as the stdlib: SOCK_NONBLOCK means non-blocking mode
        self._timeout = timeout
        try:
            self._init_fd()
        except BaseException:
            raw.detach() if fileno is not None else raw.close()
            raise

    # -- face hooks ----------------------------------------------------------

    def _init_fd(self) -> None:
        """Put a new (or adopted) descriptor in the state the face needs for ``_timeout``."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _set_mode(self, timeout: float | None) -> None:
        """Set ``_timeout``, then put the raw descriptor in the state the mode needs
        (``OSError(EBADF)`` on a closed socket, the mode recorded all the same)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _real_close(self) -> None:
        """Close the descriptor, waking every task or thread waiting on it."""
        raise NotImplementedError  # pragma: no cover - abstract

    def _watcher(self, waiter: Any) -> Any:
        """The waiter that will watch the descriptor for a wait ``waiter`` was asked for
        (the engine asks before each wait), which ``close()`` must then forget it in.
        Here: ``waiter`` itself, where nothing registers."""
        return waiter

    def _wake_senders(self) -> None:
        """``shutdown()`` of writing in blocking mode: wake the calls waiting to send, as
        the kernel wakes a ``send`` blocked in it (their retry fails with ``EPIPE``),
        which the readiness of an ``AF_UNIX`` socket whose buffer is full does not
        report. Here: nothing, for a face whose blocking-mode calls block in the kernel."""

    # -- closing --------------------------------------------------------------

    def close(self) -> None:
        """Close the socket; with ``makefile()`` files open, once the last of them closes.

        Tasks or threads waiting on the socket wake with ``OSError(EBADF)``.
        """
        self._closed = True
        if self._io_refs <= 0:
            self._real_close()

    def _decref_socketios(self) -> None:
        """A file made by ``makefile()`` was closed (the stdlib's ``SocketIO`` calls this)."""
        if self._io_refs > 0:
            self._io_refs -= 1
        if self._closed:
            self.close()

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

    def getsockopt(self, level: int, optname: int, /, *buflen: int) -> Any:
        """Return a socket option, as ``socket.socket.getsockopt(level, optname[, buflen])``
        (the stdlib checks the arguments: ``None`` is no ``buflen``, a ``TypeError``)."""
        return self._sock.getsockopt(level, optname, *buflen)

    def setsockopt(self, level: int, optname: int, value: Any, /, *optlen: int) -> None:
        """Set a socket option, as ``socket.socket.setsockopt(level, optname, value[,
        optlen])`` (the stdlib checks the arguments: ``None`` is no ``optlen``)."""
        self._sock.setsockopt(level, optname, value, *optlen)

    def listen(self, *backlog: int) -> None:
        """Enable a server to accept connections (``listen([backlog])``)."""
        self._sock.listen(*backlog)

    def shutdown(self, how: int, /) -> None:
        """Shut down reading (``SHUT_RD``), writing (``SHUT_WR``) or both (``SHUT_RDWR``).

        In blocking mode, calls waiting to send on the socket then fail with
        ``BrokenPipeError``, as the stdlib's blocked ``send`` does.
        """
        self._sock.shutdown(how)
        if how != _SHUT_RD and self._timeout is None:
            self._wake_senders()

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

    __repr__ = RawSocket.__repr__

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
