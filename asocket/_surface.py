"""The docstrings both faces share, declared once.

Each face writes its methods and functions as one line on top of the engine
(their signatures are the face's own: a coroutine on one, a plain call on the
other, which type checkers must see), and takes its docstrings from here
(:func:`documented`, :func:`function`), so the reference text exists once.
``tests/test_surface.py`` checks that both faces expose the same names (each
face's ``__all__`` is a literal list: type checkers read only that) with the
same signatures, and that every public callable has a docstring.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

C = TypeVar("C", bound=type)
F = TypeVar("F", bound=Callable[..., Any])

# What each method of ``socket`` does, for both faces. On the async face the calls
# that may wait are coroutines; "wait" there means the task waits, not the thread.
METHODS: dict[str, str] = {
    "accept": """Wait for a connection; return ``(socket, address)``.

        The new socket gets the module's default timeout, as in the stdlib.
        """,
    "bind": """Bind to ``address``; a host name is resolved first (off the event loop
        on the async face).""",
    "connect": """Connect to ``address``; raises ``OSError`` on failure, ``TimeoutError``
        on timeout.""",
    "connect_ex": """Like ``connect()``, but return the errno instead of raising
        (0: connected).""",
    "recv": """Receive up to ``bufsize`` bytes; ``b''`` means the peer closed its side.""",
    "recv_into": """Receive into ``buffer`` (up to ``nbytes``, or its size); return the count.""",
    "recvfrom": """Receive up to ``bufsize`` bytes; return ``(data, address)``.""",
    "recvfrom_into": """Receive into ``buffer``; return ``(nbytes, address)``.""",
    "recvmsg": """Receive data and ancillary data; return
        ``(data, ancdata, msg_flags, address)``.""",
    "recvmsg_into": """Like ``recvmsg()``, into ``buffers``:
        ``(nbytes, ancdata, msg_flags, address)``.""",
    "send": """Send ``data``; return how many bytes were sent (possibly fewer than all).""",
    "sendall": """Send all of ``data``; the timeout covers the whole call.

        On the async face a cancelled call sends no byte after the cancellation; how
        many were sent before it is unknown, as after a timeout.
        """,
    "sendto": """``sendto(data, address)`` or ``sendto(data, flags, address)``; return
        the count.""",
    "sendmsg": """Send data and ancillary data (e.g. ``SCM_RIGHTS``); return the count.""",
    "sendmsg_afalg": """``sendmsg_afalg([msg], *, op[, iv[, assoclen[, flags]]])`` for
        AF_ALG sockets.""",
    "sendfile": """Send a file (``os.sendfile`` where possible); return the bytes sent.

        As the stdlib: ``ValueError`` for a non-blocking socket, and the timeout
        applies to each wait rather than to the whole call.
        """,
    "detach": """Close the socket object without closing the descriptor, and return
        the descriptor.""",
    "makefile": """A file object on the socket.

        On the sync face, the stdlib's own ``socket.socket.makefile`` (text or binary).
        On the async face, an awaitable buffered binary file
        (``asocket.AsyncSocketFile``): mode ``"rb"`` (the default), ``"wb"`` or
        ``"rwb"``; a text mode raises ``ValueError`` (decode the bytes read). Its
        calls follow the socket's mode, one deadline per call, and lose no byte to a
        timeout or a cancellation (see docs/files.md).

        As in the stdlib, the descriptor stays open until the socket and every file
        made from it are closed.
        """,
}

FUNCTIONS: dict[str, str] = {
    "socketpair": """Two connected sockets (``socket.socketpair``: AF_UNIX, or AF_INET
    where there is none), in the default timeout mode.""",
    "fromfd": """A socket on a duplicate of ``fd`` (the original stays open).""",
    "from_socket": """Adopt a stdlib ``socket.socket``: it is detached and the new socket
    owns its descriptor and keeps its timeout.""",
    "create_connection": """Connect to ``(host, port)`` and return the connected socket.

    As ``socket.create_connection``, with Happy Eyeballs (RFC 8305): the
    addresses ``getaddrinfo`` returns are interleaved by family and raced, a
    new attempt starting every ``happy_eyeballs_delay`` seconds (0.25) or as
    soon as one fails; the first to connect wins and the others are closed.
    ``happy_eyeballs_delay=None`` tries one address at a time, in order.
    ``timeout`` (else the default timeout) bounds the whole call and is then
    set on the socket. ``source_address`` is bound first. Raises the last
    attempt's error (``TimeoutError('timed out')`` at the deadline), or with
    ``all_errors=True`` an ``ExceptionGroup`` of every attempt's error.

    ``ssl`` (an ``ssl.SSLContext``, or ``True`` for the default context): wrap the
    connection in TLS and do the handshake before returning an ``SSLSocket``;
    ``server_hostname`` defaults to the host of ``address``; ``timeout`` bounds the
    handshake too, ``ssl_handshake_timeout`` bounds it alone.
    """,
    "create_server": """A TCP socket bound to ``address`` and listening; see
    ``socket.create_server``.""",
    "wrap_socket": """Wrap ``sock`` in TLS (as ``context.wrap_socket``): ``sock`` is detached
    and the returned ``SSLSocket`` of the same face owns its descriptor and mode.

    With ``do_handshake_on_connect`` and a connected socket, the handshake is done
    before this returns, under the socket's mode (non-blocking: ``ValueError``,
    as the stdlib). Raises what the stdlib raises (``ssl.SSLError``,
    ``ssl.SSLCertVerificationError``, ``TimeoutError``...); the socket is then closed.
    """,
}


def documented(cls: C) -> C:
    """Give each method of ``cls`` that has no docstring its entry of :data:`METHODS`."""
    for name, doc in METHODS.items():
        method = cls.__dict__.get(name)
        if method is not None and method.__doc__ is None:
            method.__doc__ = inspect.cleandoc(doc)
    return cls


def function(fn: F) -> F:
    """Give the module function ``fn`` its docstring from :data:`FUNCTIONS`."""
    fn.__doc__ = inspect.cleandoc(FUNCTIONS[fn.__name__])
    return fn
