"""An asyncio client for unix_echo_server.py: echo_client.py on a Unix socket.

Takes the socket's file --path in place of --host/--port. Sends each MESSAGE
as one line (with no MESSAGE, all of stdin's lines) and writes the echoed
bytes to stdout exactly as received:

    python examples/unix_echo_client.py --path /tmp/echo.sock hello world
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import asocket


async def recv_exactly(sock: asocket.socket, size: int) -> bytes:
    """Receive exactly ``size`` bytes: a stream socket may deliver a reply in pieces."""
    data = bytearray()
    while len(data) < size:
        chunk = await sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    return bytes(data)


async def talk(args: argparse.Namespace) -> int:
    if args.message:
        lines = [message.encode() + b"\n" for message in args.message]
    else:
        lines = list(sys.stdin.buffer)  # read all of stdin first: no blocking later
    try:
        # create_connection() is for TCP; a Unix socket is made and connected by hand.
        async with asocket.socket(asocket.AF_UNIX, asocket.SOCK_STREAM) as sock:
            sock.settimeout(args.timeout)  # connect and every recv/sendall below
            await sock.connect(args.path)
            for line in lines:
                await sock.sendall(line)
                sys.stdout.buffer.write(await recv_exactly(sock, len(line)))
                sys.stdout.buffer.flush()
    except OSError as exc:  # TimeoutError, FileNotFoundError, ConnectionError...
        print(f"unix_echo_client: {args.path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


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
        description="Async echo client on a Unix stream socket; takes --path, not --host/--port."
    )
    parser.add_argument("message", nargs="*", help="lines to send (default: read stdin)")
    parser.add_argument(
        "--path",
        default="/tmp/asocket-echo.sock",
        help="the server's socket file, in place of --host/--port (default: %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=5.0,
        help="seconds to wait for the connection and for each reply (default: %(default)s)",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    try:
        return asyncio.run(talk(args))
    except KeyboardInterrupt:
        return 130  # Ctrl-C: exit quietly, as shell tools do


if __name__ == "__main__":
    sys.exit(main())
