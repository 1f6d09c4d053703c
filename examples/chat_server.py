"""A line-based chat server: each line a client sends goes to every other client.

    python examples/chat_server.py --port 7000
    nc 127.0.0.1 7000        # in two or more terminals (or: socat - TCP:127.0.0.1:7000)

Each client first gets a "* welcome ..." line; after that, a line "hi" from
the client at 127.0.0.1:50000 reaches the others as "[127.0.0.1:50000] hi".

Several tasks write to one client's socket here: every other client's
handler broadcasts to it. Two sendall() calls on one socket from two tasks
at once may interleave their bytes: a sendall() that fills the kernel's
buffer waits, and another task's sendall() can then slip its bytes in,
mid-line (the stdlib's sendall() from two threads behaves the same). So no
task but one ever writes to a client: each client has an outbox queue and a
writer task that empties it with sendall(), one whole line at a time. A
client too slow to read its lines fills its outbox (--max-queue lines), and
is disconnected rather than slowing down everyone else.

Ctrl-C (SIGINT) or SIGTERM: stop accepting, tell every client, close their
connections once their outboxes are sent, and exit with status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from typing import Any

import asocket

MAX_LINE = 4096  # longest line accepted; a client sending longer ones is disconnected


def format_address(address: Any) -> str:
    """'127.0.0.1:7000' or '[::1]:7000' for a socket address."""
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Client:
    """One connected client: its socket, and the outbox only its writer task sends from."""

    def __init__(self, sock: asocket.socket, name: str, max_queue: int) -> None:
        self.sock = sock
        self.name = name
        # None in the outbox means: send what is before it, then end the connection.
        self.outbox: asyncio.Queue[bytes | None] = asyncio.Queue(max_queue)
        self.writer = asyncio.create_task(self.write_outbox())

    async def write_outbox(self) -> None:
        """The only task that writes to this socket, so lines never interleave."""
        try:
            while (line := await self.outbox.get()) is not None:
                await self.sock.sendall(line)
        except OSError:
            pass  # the client is gone; its handler notices and cleans up
        finally:
            self.hang_up()

    def send(self, line: bytes) -> None:
        """Queue a line for this client, never waiting: a full outbox disconnects it."""
        try:
            self.outbox.put_nowait(line)
        except asyncio.QueueFull:
            logging.info("%s reads too slowly: disconnecting it", self.name)
            self.writer.cancel()  # its finally: hangs up

    def close_after_outbox(self) -> None:
        """Send what is queued, then end the connection (used on shutdown)."""
        try:
            self.outbox.put_nowait(None)
        except asyncio.QueueFull:
            self.writer.cancel()

    def hang_up(self) -> None:
        """End the connection both ways: the handler's recv() then sees end of file."""
        try:
            self.sock.shutdown(asocket.SHUT_RDWR)
        except OSError:
            pass  # already disconnected


class ChatRoom:
    def __init__(self, max_queue: int) -> None:
        self.clients: set[Client] = set()
        self.max_queue = max_queue

    def broadcast(self, sender: Client, line: bytes) -> None:
        message = f"[{sender.name}] ".encode() + line + b"\n"
        for client in self.clients:
            if client is not sender:
                client.send(message)

    async def handle(self, sock: asocket.socket, address: Any) -> None:
        """serve_tcp runs this in a task per connection, and closes ``sock`` after it."""
        client = Client(sock, format_address(address), self.max_queue)
        client.send(f"* welcome {client.name}; {len(self.clients)} other(s) here\n".encode())
        self.clients.add(client)
        logging.info("%s joined", client.name)
        try:
            pending = b""
            while data := await sock.recv(4096):  # b"": the client left (or hang_up())
                *lines, pending = (pending + data).split(b"\n")
                for line in lines:
                    self.broadcast(client, line.rstrip(b"\r"))
                if len(pending) > MAX_LINE:
                    logging.info("%s sent a line too long: disconnecting it", client.name)
                    break
        except OSError:
            pass  # reset by the client
        finally:
            self.clients.discard(client)
            client.writer.cancel()  # nothing more to send to a client that is leaving
            await asyncio.wait([client.writer])  # let it end before serve_tcp closes sock
            logging.info("%s left", client.name)

    def close(self) -> None:
        for client in self.clients:
            client.send(b"* server shutting down\n")
            client.close_after_outbox()


def fail(doing: str, exc: OSError) -> SystemExit:
    """Exit status 1 and one line on stderr ("chat_server: cannot ...: reason"), for a
    mistake (a port in use, a host that does not resolve), not a traceback."""
    reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or exc
    return SystemExit(f"chat_server: {doing}: {reason}")


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    room = ChatRoom(args.max_queue)
    try:
        server = await asocket.serve_tcp(
            room.handle,
            args.host,
            args.port,
            max_connections=args.max_connections,
            grace_period=5.0,  # for clients that do not read their last lines
        )
    except OSError as exc:  # a port in use, a host that does not resolve...
        raise fail(f"cannot listen on {format_address((args.host, args.port))}", exc) from None
    async with server:
        for listener in server.sockets:
            print(f"listening on {format_address(listener.getsockname())}", flush=True)
        await stop.wait()
        server.close()  # stop accepting first, so no one joins while we say goodbye
        room.close()
    logging.info("stopped")


def port_number(text: str) -> int:
    """--port's type: an integer from 0 to 65535 (argparse rejects anything else)."""
    if not (text.isdigit() and int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"not a port number (0-65535): {text!r}")
    return int(text)


def count(text: str) -> int:
    """The type of a count that must be at least 1."""
    if not (text.isdigit() and int(text) >= 1):
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")
    return int(text)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Line-based TCP chat server: every line goes to all other clients. "
        "Use nc or socat as a client. Stop it with Ctrl-C or SIGTERM."
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=7000,
        help="port; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--max-connections",
        type=count,
        default=100,
        help="clients at once; more wait in the backlog (default: %(default)s)",
    )
    parser.add_argument(
        "--max-queue",
        type=count,
        default=100,
        help="lines queued for a slow client before it is dropped (default: %(default)s)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
