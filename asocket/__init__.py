"""asocket: Python's ``socket`` module, made awaitable and native to asyncio.

``import asocket`` gives the async face: the stdlib's constants, helpers and
exceptions, an awaitable ``socket`` class with the stdlib's blocking,
non-blocking and timeout modes, and awaitable module functions that never
block the loop. ``import asocket.sync as socket`` gives the blocking face,
a drop-in for the stdlib module, on the same core.
"""

from . import _stdlib
from ._async import (
    AsyncSocket,
    AsyncSocket as SocketType,
    AsyncSocket as socket,
    AsyncSSLSocket as SSLSocket,
    create_connection as create_connection,
    create_server as create_server,
    from_socket as from_socket,
    fromfd as fromfd,
    getaddrinfo as getaddrinfo,
    getfqdn as getfqdn,
    gethostbyaddr as gethostbyaddr,
    gethostbyname as gethostbyname,
    gethostbyname_ex as gethostbyname_ex,
    getnameinfo as getnameinfo,
    recv_fds as recv_fds,
    send_fds as send_fds,
    socketpair as socketpair,
    wrap_socket as wrap_socket,
)
from ._file import (
    AsyncSocketFile as AsyncSocketFile,
    IncompleteReadError as IncompleteReadError,
    LimitOverrunError as LimitOverrunError,
)
from ._serve_async import Server as Server, serve_tcp as serve_tcp, serve_unix as serve_unix
from ._timeouts import (
    getdefaulttimeout as getdefaulttimeout,
    setdefaulttimeout as setdefaulttimeout,
)

# isort: split
# Last: the stdlib's constants, helpers and exceptions. (At run time _stdlib.__all__ leaves
# out socket, create_connection..., bound above; a type checker sees the stdlib's too, and
# keeps the names bound first.)
from ._stdlib import *  # type: ignore[assignment, no-redef]  # noqa: F403

__version__ = "0.1.0"

# A literal list, as type checkers read it; tests/test_surface.py checks that both
# faces list the same names after their own (the async face's buffered file and its
# errors are its own: the sync face keeps the stdlib's makefile()).
__all__ = [
    "AsyncSocket",
    "Server",
    "AsyncSocketFile",
    "IncompleteReadError",
    "LimitOverrunError",
    "SSLSocket",
    "SocketType",
    "create_connection",
    "create_server",
    "from_socket",
    "fromfd",
    "getaddrinfo",
    "getdefaulttimeout",
    "getfqdn",
    "gethostbyaddr",
    "gethostbyname",
    "gethostbyname_ex",
    "getnameinfo",
    "recv_fds",
    "send_fds",
    "serve_tcp",
    "serve_unix",
    "setdefaulttimeout",
    "socket",
    "socketpair",
    "wrap_socket",
    *_stdlib._NAMES,
]
