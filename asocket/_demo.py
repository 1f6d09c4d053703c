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


async def _echo(conn: asocket.socket) -> None:
    with conn:
        while data := await conn.recv(65536):
            await conn.sendall(data)


async def _serve(listener: asocket.socket, handlers: set[asyncio.Task[None]]) -> None:
    while True:
        conn, _ = await listener.accept()
        task = asyncio.create_task(_echo(conn))
        handlers.add(task)
        task.add_done_callback(handlers.discard)


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
    listener = await asocket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    print(f"echo server listening on 127.0.0.1:{port}")
    handlers: set[asyncio.Task[None]] = set()
    server = asyncio.create_task(_serve(listener, handlers))
    try:
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
    finally:
        server.cancel()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(server, *handlers, return_exceptions=True)
        listener.close()
    print("done: both faces talked to one server")
    return 0
