"""The echo handler, one per face: what the demo, ``python -m asocket echo-server`` and
the docs run for each connection.

A handler for ``serve_tcp`` / ``serve_unix`` (either face): called with the
connected socket and the peer's address; the server closes the socket when the
handler returns. The two bodies differ only in ``await``.
"""

from __future__ import annotations

from typing import Any

import asocket
import asocket.sync

CHUNK = 65536
"""How much one ``recv`` asks for."""


async def echo(sock: asocket.socket, address: Any) -> None:
    """Send back every byte ``sock`` receives until the peer shuts down its side;
    return quietly if the peer resets the connection."""
    try:
        while data := await sock.recv(CHUNK):  # b"": the peer has shut down its side
            await sock.sendall(data)
    except ConnectionError:
        pass  # the peer reset the connection: nobody is left to echo to


def echo_sync(sock: asocket.sync.socket, address: Any) -> None:
    """``echo`` for the sync face (a thread per connection): the same, blocking."""
    try:
        while data := sock.recv(CHUNK):  # b"": the peer has shut down its side
            sock.sendall(data)
    except ConnectionError:
        pass  # the peer reset the connection: nobody is left to echo to
