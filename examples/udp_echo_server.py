"""An asyncio UDP echo server: every datagram goes back to its sender.

    python examples/udp_echo_server.py --port 9000
    python examples/udp_echo_client.py --port 9000 hello
    printf 'hello\\n' | socat -t 1 - UDP:127.0.0.1:9000
    printf 'hello\\n' | nc -u -w 1 127.0.0.1 9000

UDP has no connections: one socket receives every client's datagrams with
recvfrom(), which also says who sent each one, and answers with sendto().

Ctrl-C (SIGINT) or SIGTERM stops it with exit status 0. Cancelling the task
waiting in recvfrom() is safe: a cancelled receive consumes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from typing import Any

import asocket

MAX_DATAGRAM = 65535  # the largest UDP payload: a datagram is never cut short


async def echo(sock: asocket.socket) -> None:
    """Send every datagram back to the address it came from."""
    while True:
        data, sender = await sock.recvfrom(MAX_DATAGRAM)
        try:
            await sock.sendto(data, sender)
        except OSError as exc:  # e.g. ENOBUFS: UDP may drop a datagram, so may we
            print(f"could not answer {sender}: {exc}", file=sys.stderr)


def format_address(address: Any) -> str:
    """'127.0.0.1:9000' or '[::1]:9000' for a socket address."""
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def fail(doing: str, exc: OSError) -> SystemExit:
    """Exit status 1 and one line on stderr ("udp_echo_server: cannot ...: reason"), for a
    mistake (a port in use, a host that does not resolve), not a traceback."""
    reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or exc
    return SystemExit(f"udp_echo_server: {doing}: {reason}")


async def serve(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    # getaddrinfo picks the family (IPv4 or IPv6) that --host needs; a host name
    # would be resolved without blocking the event loop.
    try:
        family, type_, proto, _, address = (
            await asocket.getaddrinfo(host, port, type=asocket.SOCK_DGRAM)
        )[0]
    except OSError as exc:  # a host that does not resolve
        raise fail(f"cannot listen on {format_address((host, port))}", exc) from None
    with asocket.socket(family, type_, proto) as sock:
        try:
            await sock.bind(address)
        except OSError as exc:  # a port in use, an address not on this machine...
            raise fail(f"cannot listen on {format_address((host, port))}", exc) from None
        print(f"listening on {format_address(sock.getsockname())}", flush=True)
        # A TaskGroup: should echo() fail, its error ends serve() (no silent hang).
        async with asyncio.TaskGroup() as tasks:
            echoing = tasks.create_task(echo(sock))
            await stop.wait()
            echoing.cancel()


def port_number(text: str) -> int:
    """--port's type: an integer from 0 to 65535 (argparse rejects anything else)."""
    if not (text.isdigit() and int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"not a port number (0-65535): {text!r}")
    return int(text)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Async UDP echo server. Stop it with Ctrl-C or SIGTERM."
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=9000,
        help="port; 0 picks a free one (default: %(default)s)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
