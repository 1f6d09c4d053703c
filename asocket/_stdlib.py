"""The stdlib ``socket`` module's constants, pure helpers and exception aliases.

Everything in ``socket.__all__`` except the names that create sockets or do
I/O, which each face defines itself, plus the public names ``socket.__all__``
leaves out (``SocketIO``, ``AddressInfo``, ``MsgFlag``, ``EAGAIN``, ...).
Both faces re-export this module with ``from ._stdlib import *``.
"""

import socket as _socket
from socket import *  # noqa: F403
from socket import (  # type: ignore[attr-defined]
    _GLOBAL_DEFAULT_TIMEOUT,
    EAGAIN,
    EBADF,
    EWOULDBLOCK,
    AddressInfo,
    MsgFlag,
    SocketIO,
    error,
    gaierror,
    herror,
    timeout,
)

# Public module attributes that socket.__all__ leaves out.
__all__ = [
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
]
__all__ += _socket.__all__
# Each face binds its own versions of these.
__all__.remove("socket")
__all__.remove("SocketType")
__all__.remove("socketpair")
__all__.remove("fromfd")
__all__.remove("create_connection")
__all__.remove("create_server")
__all__.remove("getaddrinfo")
__all__.remove("getnameinfo")
__all__.remove("gethostbyname")
__all__.remove("gethostbyname_ex")
__all__.remove("gethostbyaddr")
__all__.remove("getfqdn")
__all__.remove("getdefaulttimeout")
__all__.remove("setdefaulttimeout")
__all__.remove("send_fds")
__all__.remove("recv_fds")
