"""asocket's blocking face: ``import asocket.sync as socket``.

A drop-in for the stdlib ``socket`` module in scripts: the same names, every
call blocking, no event loop anywhere on its path, on the same core as the
async face. Beyond the stdlib, ``close()`` from one thread wakes another
thread blocked on the socket with ``OSError(EBADF)``.
"""

from socket import (
    getaddrinfo as getaddrinfo,
    getfqdn as getfqdn,
    gethostbyaddr as gethostbyaddr,
    gethostbyname as gethostbyname,
    gethostbyname_ex as gethostbyname_ex,
    getnameinfo as getnameinfo,
    recv_fds as recv_fds,
    send_fds as send_fds,
)

from . import _stdlib
from ._serve_threads import (
    ThreadedServer as ThreadedServer,
    serve_tcp as serve_tcp,
    serve_unix as serve_unix,
)
from ._sync import (
    SyncSocket,
    SyncSocket as SocketType,
    SyncSocket as socket,
    SyncSSLSocket as SSLSocket,
    create_connection as create_connection,
    create_server as create_server,
    from_socket as from_socket,
    fromfd as fromfd,
    socketpair as socketpair,
    wrap_socket as wrap_socket,
)
from ._timeouts import (
    getdefaulttimeout as getdefaulttimeout,
    setdefaulttimeout as setdefaulttimeout,
)

# isort: split
# Last: the stdlib's constants, helpers and exceptions. (At run time _stdlib.__all__ leaves
# out socket, create_connection..., bound above; a type checker sees the stdlib's too, and
# keeps the names bound first.)
from ._stdlib import *  # type: ignore[assignment, no-redef]  # noqa: F403

# A literal list, as type checkers read it; tests/test_surface.py checks that both
# faces list the same names after their two classes.
__all__ = [
    "SyncSocket",
    "ThreadedServer",
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
