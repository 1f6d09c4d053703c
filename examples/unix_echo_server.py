"""An asyncio echo server on a Unix stream socket (asocket.serve_unix).

A Unix socket is a file path rather than a host and a port, so this example
takes --path instead of --host/--port:

    python examples/unix_echo_server.py --path /tmp/echo.sock
    python examples/unix_echo_client.py --path /tmp/echo.sock hello
    printf 'hello\\n' | nc -N -U /tmp/echo.sock
    printf 'hello\\n' | socat -t 5 - UNIX-CONNECT:/tmp/echo.sock

serve_unix replaces a stale socket file left at --path by a crashed server,
and removes the file again when it closes. Ctrl-C (SIGINT) or SIGTERM shuts
it down gracefully (see echo_server.py) with exit status 0; a second one
closes the open connections at once.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from typing import Any

import asocket


async def echo(sock: asocket.socket, address: Any) -> None:
    """Handle one connection: send back every byte until the client closes its side."""
    try:
        while data := await sock.recv(65536):
            await sock.sendall(data)
    except ConnectionError:
        pass  # the client reset the connection: nothing to clean up


def fail(doing: str, exc: OSError) -> SystemExit:
    """Exit status 1 and one line on stderr ("unix_echo_server: cannot ...: reason"), for a
    mistake (a port in use, a host that does not resolve), not a traceback."""
    reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or exc
    return SystemExit(f"unix_echo_server: {doing}: {reason}")


async def serve(path: str, max_connections: int, grace_period: float) -> None:
    try:
        server = await asocket.serve_unix(
            echo, path, max_connections=max_connections, grace_period=grace_period
        )
    except OSError as exc:  # a missing directory, a path in use...
        raise fail(f"cannot listen on {path}", exc) from None
    stop = asyncio.Event()

    def on_signal() -> None:  # the first stops accepting, a second closes the connections
        if not stop.is_set():
            stop.set()
        else:
            logging.info("closing %d connection(s) now", server.active_connections)
            server.close_clients()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    async with server:  # on exit: stop accepting, remove the file, let handlers finish
        print(f"listening on {path}", flush=True)
        await stop.wait()
        server.close()  # stop accepting now; leaving `async with` waits for the handlers
        logging.info(
            "shutting down: %d connection(s) open (Ctrl-C again to close them now)",
            server.active_connections,
        )
    logging.info("stopped")


def count(text: str) -> int:
    """The type of a count that must be at least 1."""
    if not (text.isdigit() and int(text) >= 1):
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")
    return int(text)


def seconds(text: str) -> float:
    """--grace-period's type: a number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    return value


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Async echo server on a Unix stream socket (asocket.serve_unix). "
        "It listens on a file path (--path), not on --host/--port. "
        "Stop it with Ctrl-C or SIGTERM."
    )
    parser.add_argument(
        "--path",
        default="/tmp/asocket-echo.sock",
        help="socket file to listen on, in place of --host/--port (default: %(default)s)",
    )
    parser.add_argument(
        "--max-connections",
        type=count,
        default=1000,
        help="connections served at once; more wait in the backlog (default: %(default)s)",
    )
    parser.add_argument(
        "--grace-period",
        type=seconds,
        default=5.0,
        help="seconds open connections get to finish on shutdown (default: %(default)s)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(serve(args.path, args.max_connections, args.grace_period))


if __name__ == "__main__":
    main()
