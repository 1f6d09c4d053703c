"""The sync face's close-while-blocked protocol: ``close()`` from one thread wakes
another thread blocked on the socket, in the kernel or in ``poll()``.

Linux wakes a thread blocked in ``recv``/``accept``/``poll`` on ``shutdown()``,
not on ``close()``; and a descriptor closed under a blocked thread could be
reused by a new socket that the thread would then watch by mistake. So:

1. every call that may block passes the gate (:meth:`Gate.call`), so ``close()``
   knows whether a thread is inside;
2. ``close()`` with threads inside detaches the descriptor (a woken thread finds
   ``fileno() == -1``), shuts it down (which wakes them) and leaves the OS close
   to the last thread out, so the number cannot be reused while one may use it;
3. a thread woken that way raises ``OSError(EBADF)``, whatever the shutdown made
   its call return (``EPIPE``, ``EINVAL``, an empty read).
"""

from __future__ import annotations

import functools
import inspect
import linecache
import socket
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ._ops import READ, Op
from ._socket import RawSocket, close_fd
from ._waiters.base import ebadf

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _empty(result: Any) -> bool:
    """A read's result that says end of file: ``b''``, 0, or a tuple that starts so."""
    return not (result[0] if type(result) is tuple else result)


# The gate's protocol for one call, written once and compiled (as dataclasses compile
# ``__init__``) into Gate.call and into the sync face's hottest blocking-mode methods
# (:func:`gated`), where it saves a Python frame per call.
#
# The call enters ``_inside`` first, then looks at ``closing``; close() sets
# ``closing`` first, then looks at ``_inside``. So either the call sees ``closing``
# (and takes the closing path), or close() sees its entry (and wakes it by shutdown).
# Looking at ``closing`` before the entry would leave a window: close() finds nobody
# inside and closes the descriptor, while the call goes on to block on it, and Linux
# does not wake a blocked recv() whose descriptor is closed.
_PROTOCOL = """\
def {name}({params}):{guard}
    gate = {gate}
    inside = gate._inside
    inside.append(None)
    if gate.closing:
        inside.pop()
        return {closing}
    try:
        result = {syscall}
    except BaseException as exc:
        inside.pop()
        if gate.closing:
            gate._failed(exc)
        raise
    inside.pop()
    if gate.closing:
        gate._returned(op, result)
    return result
"""


def _compile(
    name: str,
    params: str,
    *,
    gate: str,
    syscall: str,
    closing: str,
    doc: str,
    guard: str = "",
    names: dict[str, Any] | None = None,
) -> Callable[..., Any]:
    """The function ``name`` made from :data:`_PROTOCOL`; its source is kept in
    ``linecache`` (named ``<asocket._gate NAME>``) for tracebacks, debuggers and
    ``inspect``."""
    source = _PROTOCOL.format(
        name=name, params=params, guard=guard, gate=gate, syscall=syscall, closing=closing
    )
    filename = f"<asocket._gate {name}>"
    namespace: dict[str, Any] = dict(names or {})
    exec(compile(source, filename, "exec"), namespace)  # (our own template)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    fn: Callable[..., Any] = namespace[name]
    fn.__doc__ = doc
    fn.__module__ = __name__
    return fn


# What a gated method does outside blocking mode: its decorated body, or (``attempt``
# given) the raw call inline, a raised ``attempt`` exception handed to ``self._rest_of_call``.
_GENERAL = """
    if self._timeout is not None:
        return general({args})"""
_ATTEMPT = """
    if self._timeout is not None:
        try:
            return self._sock.{name}({call})
        except attempt as exc:
            error = exc
        return self._rest_of_call(op, self._sock.{name}, ({call},), error)"""


def gated(op: Op, attempt: tuple[type[BaseException], ...] = ()) -> Callable[[F], F]:
    """Decorate a sync-face method whose body makes the raw socket's call of the same
    name: in blocking mode the method becomes that call through the gate's protocol,
    compiled inline (one Python frame, not two). In the other modes (a non-blocking
    descriptor) it runs the decorated body or, with ``attempt`` (the exceptions that
    mean "would block"), makes the call inline and hands such an exception to the
    socket's ``_rest_of_call(op, fn, args, exc)``, which settles and waits. Once ``close()``
    began, it runs the decorated body."""

    def decorate(general: F) -> F:
        name = general.__name__
        text, args = _parameters(general)
        call = args.partition(", ")[2]
        guard = (_ATTEMPT if attempt else _GENERAL).format(name=name, args=args, call=call)
        fn = _compile(
            name,
            text,
            guard=guard,
            gate="self._gate",
            syscall=f"self._sock.{name}({call})",
            closing=f"general({args})",
            doc=general.__doc__ or "",
            names={"general": general, "op": op, "attempt": attempt},
        )
        functools.update_wrapper(fn, general)
        return cast(F, fn)

    return decorate


def _parameters(fn: Callable[..., Any]) -> tuple[str, str]:
    """``fn``'s parameter list without annotations (defaults by reference), and the
    names passed on positionally."""
    text: list[str] = []
    names: list[str] = []
    only = False
    for p in inspect.signature(fn).parameters.values():
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            raise TypeError(f"gated: {fn.__qualname__}: only positional parameters")
        if only and p.kind is p.POSITIONAL_OR_KEYWORD:
            text.append("/")
            only = False
        only = p.kind is p.POSITIONAL_ONLY
        text.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
        names.append(p.name)
    if only:
        text.append("/")
    return ", ".join(text), ", ".join(names)


class Gate:
    """Who is blocked on one socket, and the close that wakes them."""

    __slots__ = ("_inside", "_pending", "_raw", "closing")

    def __init__(self, raw: socket.socket) -> None:
        self._raw = raw  # the raw socket the calls are made on
        # One entry per thread inside a call that may block (a deque: appending to and
        # popping from an empty list reallocates it each time).
        self._inside: deque[None] = deque()
        self._pending: list[int] = []  # a detached fd that the last thread out closes
        self.closing = False

    if TYPE_CHECKING:  # (its signature, for type checkers; the code is compiled below)

        def call(self, op: Op | None, fn: Callable[..., T], *args: Any) -> T: ...

    else:
        call = _compile(
            "call",
            "self, op, fn, /, *args",
            gate="self",
            syscall="fn(*args)",
            closing="self._call_closing(op, fn, args)",
            doc="""``fn(*args)``, a call on the raw socket that may block; ``OSError(EBADF)``
            if :meth:`close` woke it. For a read (``op.event == READ``) an empty result
            then means EBADF, not end of file. (The sync face's blocking-mode calls are
            this, or a method :func:`gated` compiled from the same template.)""",
        )

    def _failed(self, exc: BaseException) -> None:
        """A call that raised ``exc`` left after ``close()`` began: woken by it, an
        ``OSError`` (``EPIPE``, ``EINVAL``...) means ``EBADF``."""
        self._left()
        if isinstance(exc, OSError):
            raise ebadf() from None

    def _returned(self, op: Op | None, result: Any) -> None:
        """A call that returned left after ``close()`` began: for a read, the "end of
        file" a shutdown by close() produced means ``EBADF``."""
        self._left()
        if op is not None and op.event == READ and _empty(result):
            raise ebadf()

    def _call_closing(self, op: Op | None, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        """:meth:`call` once ``close()`` has begun (in another thread, perhaps still under way)."""
        inside = self._inside
        inside.append(None)
        try:
            if self._raw.fileno() != -1:
                # close() is under way in another thread and may have looked at _inside
                # before the append above: do not start a call it would not wake.
                raise ebadf()
            return fn(*args)
        finally:
            inside.pop()
            self._left()

    def _left(self) -> None:
        """A call left after ``close()`` began: the last one out closes the fd."""
        if not self._inside:
            self._close_pending()

    def close(self, raw: socket.socket) -> None:
        """Close ``raw`` (the raw socket, as its owner holds it now); threads blocked on
        it wake (and raise ``OSError(EBADF)``)."""
        if raw.fileno() == -1:
            return
        self.closing = True
        if not self._inside:
            raw.close()
            return
        # Detached first, so a woken thread already finds fileno() == -1.
        fd = raw.detach()
        if fd != -1:  # -1: a concurrent close() detached it first
            # (Nobody else closes the fd before it is in _pending.)
            try:
                waker = RawSocket(fileno=fd)
            except OSError:
                pass
            else:
                try:
                    waker.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                waker.detach()
            self._pending.append(fd)
        if not self._inside:
            self._close_pending()

    def _close_pending(self) -> None:
        try:
            fd = self._pending.pop()
        except IndexError:  # another thread took it
            return
        close_fd(fd)
