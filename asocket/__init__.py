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
    create_connection,
    create_server,
    from_socket,
    fromfd,
    getaddrinfo,
    getfqdn,
    gethostbyaddr,
    gethostbyname,
    gethostbyname_ex,
    getnameinfo,
    recv_fds,
    send_fds,
    socketpair,
)
from ._serve import Server, serve_tcp, serve_unix
from ._timeouts import getdefaulttimeout, setdefaulttimeout

# isort: split
# Last: the stdlib's constants, helpers and exceptions. (At run time _stdlib.__all__ leaves
# out socket, create_connection..., bound above; a type checker sees the stdlib's too, and
# keeps the names bound first.)
from ._stdlib import *  # type: ignore[assignment]  # noqa: F403

__version__ = "0.1.0"

__all__ = [
    "AsyncSocket",
    "Server",
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
    *_stdlib._NAMES,
]
