"""A blocking TCP echo client: a plain stdlib-style script on asocket.sync.

The stdlib script with one changed import. Sends each MESSAGE as one line
(with no MESSAGE, each line of stdin) and writes the echoed bytes to stdout
exactly as received, as nc/socat would:

    python examples/sync_echo_client.py --port 8000 hello world
    printf 'hello\\nworld\\n' | python examples/sync_echo_client.py --port 8000

--timeout bounds the connect and each wait for a reply; on a timeout or a
connection error the client prints the error and exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

import asocket.sync as socket  # instead of: import socket


def lines(messages: list[str]) -> Iterator[bytes]:
    """The lines to send: the MESSAGE arguments, else stdin's lines."""
    if messages:
        for message in messages:
            yield message.encode() + b"\n"
    else:
        yield from sys.stdin.buffer


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
        description="Blocking TCP echo client on asocket.sync: sends lines, prints the echo."
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
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    try:
        # timeout=... puts the socket in timeout mode, for connect and every call after it.
        # makefile() works as in the stdlib: read(n) returns once n bytes have come (or the
        # server has closed), however the stream splits them.
        with (
            socket.create_connection((args.host, args.port), timeout=args.timeout) as sock,
            sock.makefile("rb") as replies,
        ):
            for line in lines(args.message):
                sock.sendall(line)
                reply = replies.read(len(line))
                if len(reply) < len(line):
                    raise ConnectionError("the server closed the connection")
                sys.stdout.buffer.write(reply)
                sys.stdout.buffer.flush()
    except OSError as exc:  # TimeoutError, ConnectionError, socket.gaierror are OSErrors
        where = f"[{args.host}]:{args.port}" if ":" in args.host else f"{args.host}:{args.port}"
        print(f"sync_echo_client: {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130  # Ctrl-C: exit quietly, as shell tools do
    return 0


if __name__ == "__main__":
    sys.exit(main())
