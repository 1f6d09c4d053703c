"""An asyncio TCP client for the echo servers.

Sends each MESSAGE as one line (or, with no MESSAGE, each line read from
stdin), waits for the server to send it back, and writes the reply to
stdout exactly as received, so its output is byte for byte what
`nc`/`socat` print for the same lines:

    python examples/echo_client.py --port 8000 hello world
    printf 'hello\\nworld\\n' | python examples/echo_client.py --port 8000

--timeout bounds the connect and every wait for a reply; on a timeout or a
connection error the client prints the error and exits with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import asocket


async def recv_exactly(sock: asocket.socket, size: int) -> bytes:
    """Receive exactly ``size`` bytes: TCP is a byte stream, a reply may come in pieces."""
    data = bytearray()
    while len(data) < size:
        chunk = await sock.recv(size - len(data))  # TimeoutError after the socket's timeout
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    return bytes(data)


async def lines(messages: list[str]) -> AsyncIterator[bytes]:
    """The lines to send: the MESSAGE arguments, else stdin's lines."""
    if messages:
        for message in messages:
            yield message.encode() + b"\n"
        return
    # Reading stdin blocks, so a thread does it and hands each line to the event loop.
    # A daemon thread, reading with os.read (no lock held), so that Ctrl-C never waits
    # for it: asyncio.to_thread would keep the process alive until the next line.
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    def deliver(line: bytes) -> None:  # b"" marks the end of input
        try:
            loop.call_soon_threadsafe(queue.put_nowait, line)
        except RuntimeError:
            pass  # the event loop is closed: the client is exiting

    def read_stdin() -> None:
        pending = b""
        try:
            while chunk := os.read(sys.stdin.fileno(), 65536):
                *complete, pending = (pending + chunk).split(b"\n")
                for line in complete:
                    deliver(line + b"\n")
        except OSError:
            pass  # an unreadable stdin ends the input too
        if pending:
            deliver(pending)  # a last line without "\n" is sent as it is
        deliver(b"")

    threading.Thread(target=read_stdin, daemon=True).start()
    while line := await queue.get():
        yield line


async def talk(args: argparse.Namespace) -> int:
    try:
        # timeout=... puts the socket in timeout mode: connect and every recv/sendall
        # below raise TimeoutError ("timed out") after that many seconds.
        async with await asocket.create_connection(
            (args.host, args.port), timeout=args.timeout
        ) as sock:
            async for line in lines(args.message):
                await sock.sendall(line)
                reply = await recv_exactly(sock, len(line))
                sys.stdout.buffer.write(reply)
                sys.stdout.buffer.flush()
    except OSError as exc:  # TimeoutError, ConnectionError, socket.gaierror are OSErrors
        where = f"[{args.host}]:{args.port}" if ":" in args.host else f"{args.host}:{args.port}"
        print(f"echo_client: {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def runner(use_uvloop: bool) -> Callable[[Coroutine[Any, Any, int]], int]:
    """asyncio.run, or uvloop.run if asked."""
    if not use_uvloop:
        return asyncio.run
    try:
        import uvloop  # imported only when asked: the example runs without it
    except ImportError:
        raise SystemExit("echo_client: --uvloop needs uvloop: pip install uvloop") from None
    return uvloop.run


def port_number(text: str) -> int:
    """--port's type: an integer from 0 to 65535 (argparse rejects anything else)."""
    if not (text.isdigit() and int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"not a port number (0-65535): {text!r}")
    return int(text)


def positive_seconds(text: str) -> float:
    """--timeout's type: a number of seconds, more than 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return value


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Async TCP echo client: sends lines, prints what the server echoes."
    )
    parser.add_argument("message", nargs="*", help="lines to send (default: read stdin)")
    parser.add_argument("--host", default="127.0.0.1", help="server address (default: %(default)s)")
    parser.add_argument(
        "--port", type=port_number, default=8000, help="server port (default: %(default)s)"
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=5.0,
        help="seconds to wait for the connection and for each reply (default: %(default)s)",
    )
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (must be installed)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    try:
        return runner(args.uvloop)(talk(args))
    except KeyboardInterrupt:
        return 130  # Ctrl-C: exit quietly, as shell tools do


if __name__ == "__main__":
    sys.exit(main())
