"""The stdlib ``socket`` module's constants, pure helpers and exception aliases.

Everything in ``socket.__all__`` except the names that create sockets or do
I/O, which each face defines itself, plus the public names ``socket.__all__``
leaves out (``SocketIO``, ``AddressInfo``, ``MsgFlag``, ``EAGAIN``, ...).
Both faces re-export this module with ``from ._stdlib import *``.
"""

import sys as _sys

# The first module both faces import: on Windows, one clear line instead of an
# error from deep inside (poll(), fd passing, AF_UNIX servers are assumed).
if _sys.platform == "win32":
    raise ImportError(
        "asocket does not support Windows yet: it is built and tested for Linux "
        "(see the Install section of the docs)"
    )

import socket as _socket
import typing as _typing
from socket import *  # noqa: F403
from socket import (  # type: ignore[attr-defined]  # (X as X: re-exported)
    _GLOBAL_DEFAULT_TIMEOUT as _GLOBAL_DEFAULT_TIMEOUT,
    EAGAIN as EAGAIN,
    EBADF as EBADF,
    EWOULDBLOCK as EWOULDBLOCK,
    AddressInfo as AddressInfo,
    MsgFlag as MsgFlag,
    SocketIO as SocketIO,
    error as error,
    gaierror as gaierror,
    herror as herror,
    timeout as timeout,
)

# Each face binds its own versions of these.
_FACE_NAMES = frozenset(
    {
        "socket",
        "SocketType",
        "socketpair",
        "fromfd",
        "create_connection",
        "create_server",
        "getaddrinfo",
        "getnameinfo",
        "gethostbyname",
        "gethostbyname_ex",
        "gethostbyaddr",
        "getfqdn",
        "getdefaulttimeout",
        "setdefaulttimeout",
        "send_fds",
        "recv_fds",
    }
)

# The public module attributes that socket.__all__ leaves out, then socket.__all__
# without the faces' names.
_NAMES = [
    "_GLOBAL_DEFAULT_TIMEOUT",
    "EAGAIN",
    "EBADF",
    "EWOULDBLOCK",
    "AddressInfo",
    "MsgFlag",
    "SocketIO",
    "error",
    "gaierror",
    "herror",
    "timeout",
    *(name for name in _socket.__all__ if name not in _FACE_NAMES),
]
if not _typing.TYPE_CHECKING:
    # Hidden from type checkers: seeing no __all__, they take every name the star import
    # above brings, typed as the stdlib's stubs type them (socket.__all__ is built at
    # run time, which they cannot follow).
    __all__ = _NAMES
