"""An asyncio UDP echo client that retries when a datagram is lost.

Sends each MESSAGE as one datagram (a line: MESSAGE plus "\\n"; with no
MESSAGE, each line of stdin), waits up to --timeout seconds for the echo and
writes it to stdout exactly as received, as socat/nc would. UDP may lose a
datagram (or its reply) without telling anyone: if no reply comes in time,
the client sends again, up to --retries more times, then gives up with exit
status 1.

    python examples/udp_echo_client.py --port 9000 hello world
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import asocket

MAX_DATAGRAM = 65535


async def exchange(
    sock: asocket.socket, server: Any, payload: bytes, timeout: float, retries: int
) -> bytes:
    """Send ``payload`` to ``server`` until its echo comes back; return the echo."""
    for attempt in range(1 + retries):
        await sock.sendto(payload, server)
        try:
            async with asyncio.timeout(timeout):  # a deadline for this attempt
                while True:
                    data, sender = await sock.recvfrom(MAX_DATAGRAM)
                    # Skip strays: datagrams from anyone else, and late echoes of an
                    # earlier message whose first copy was only slow, not lost.
                    if sender[:2] == server[:2] and data == payload:
                        return data
        except TimeoutError:
            print(f"no reply within {timeout}s (attempt {attempt + 1})", file=sys.stderr)
    raise TimeoutError(f"no reply after {1 + retries} attempts")


async def talk(args: argparse.Namespace) -> int:
    if args.message:
        payloads = [message.encode() + b"\n" for message in args.message]
    else:
        payloads = list(sys.stdin.buffer)  # read all of stdin first: no blocking later
    try:
        family, type_, proto, _, server = (
            await asocket.getaddrinfo(args.host, args.port, type=asocket.SOCK_DGRAM)
        )[0]
        with asocket.socket(family, type_, proto) as sock:
            for payload in payloads:
                sys.stdout.buffer.write(
                    await exchange(sock, server, payload, args.timeout, args.retries)
                )
                sys.stdout.buffer.flush()
    except OSError as exc:  # TimeoutError and socket.gaierror are OSErrors
        where = f"[{args.host}]:{args.port}" if ":" in args.host else f"{args.host}:{args.port}"
        print(f"udp_echo_client: {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def port_number(text: str) -> int:
    """--port's type: an integer from 0 to 65535 (argparse rejects anything else)."""
    if not (text.isdigit() and int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"not a port number (0-65535): {text!r}")
    return int(text)


def retries(text: str) -> int:
    """--retries' type: an integer, 0 or more."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not a number of retries: {text!r}")
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
        description="Async UDP echo client: one datagram per line, resent when lost."
    )
    parser.add_argument("message", nargs="*", help="lines to send (default: read stdin)")
    parser.add_argument("--host", default="127.0.0.1", help="server address (default: %(default)s)")
    parser.add_argument(
        "--port", type=port_number, default=9000, help="server port (default: %(default)s)"
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=1.0,
        help="seconds to wait for each reply before resending (default: %(default)s)",
    )
    parser.add_argument(
        "--retries",
        type=retries,
        default=3,
        help="how many times to resend a lost datagram (default: %(default)s)",
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
