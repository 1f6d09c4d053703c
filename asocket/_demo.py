"""The demo (``python -m asocket``): both faces talk to one loopback echo server.

Starts an async echo server on 127.0.0.1 (an ephemeral port), talks to it
with the async face and, from a worker thread, with the sync face, shows a
timeout and a non-blocking call, prints what happened, and returns. It never
waits more than a few seconds and sends nothing off this machine.
"""

from __future__ import annotations

import asyncio
import time

import asocket
import asocket.sync

from ._echo import echo


def _sync_client(port: int) -> list[str]:
    lines = []
    with asocket.sync.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"hello from the sync face")
        lines.append(f"sync  client got {sock.recv(1024)!r}")
        sock.settimeout(0.2)
        start = time.monotonic()
        try:
            sock.recv(1024)
        except TimeoutError as exc:
            waited = time.monotonic() - start
            lines.append(
                f"sync  recv with settimeout(0.2): TimeoutError({exc}) after {waited:.2f}s"
            )
    return lines


async def demo() -> int:
    """Run the demo, printing each step; return the exit status, 0."""
    # The echo handler python -m asocket echo-server runs; a task per connection.
    server = await asocket.serve_tcp(echo, "127.0.0.1", 0, grace_period=1.0)
    async with server:  # on the way out: stop accepting, let the handlers end
        port = server.sockets[0].getsockname()[1]
        print(f"echo server listening on 127.0.0.1:{port}")
        sock = await asocket.create_connection(("127.0.0.1", port), timeout=5)
        with sock:
            await sock.sendall(b"hello from the async face")
            print(f"async client got {await sock.recv(1024)!r}")
            sock.setblocking(False)
            try:
                await sock.recv(1024)
            except BlockingIOError as exc:
                print(f"async recv in non-blocking mode: BlockingIOError({exc.strerror})")
            sock.settimeout(0.2)
            start = time.monotonic()
            try:
                await sock.recv(1024)
            except TimeoutError as exc:
                waited = time.monotonic() - start
                print(f"async recv with settimeout(0.2): TimeoutError({exc}) after {waited:.2f}s")
        for line in await asyncio.wait_for(asyncio.to_thread(_sync_client, port), 10):
            print(line)
    print("done: both faces talked to one server")
    return 0
