"""An asyncio TCP echo server built on asocket.serve_tcp.

Every byte a client sends comes straight back to it, so nc, socat and
echo_client.py all get back exactly what they sent:

    python examples/echo_server.py --port 8000
    python examples/echo_client.py --port 8000 hello world
    printf 'hello\\n' | nc -N 127.0.0.1 8000

serve_tcp runs one task per connection, caps how many run at once
(--max-connections: while full it stops accepting, so the kernel's backlog
queues the rest) and logs a handler's crash instead of dying with it.

Ctrl-C (SIGINT) or SIGTERM shuts the server down gracefully: it stops
accepting, lets open connections go on for up to --grace-period seconds,
then cancels their handlers, and exits with status 0. A second Ctrl-C (or
SIGTERM) cuts the grace period short: server.close_clients() cancels the
handlers at once.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any

import asocket


async def echo(sock: asocket.socket, address: Any) -> None:
    """Handle one connection: send back every byte until the client closes its side."""
    try:
        while data := await sock.recv(65536):  # b"" means the client closed its side
            await sock.sendall(data)
    except ConnectionError:
        pass  # the client reset the connection: nothing to clean up
    # No close() here: serve_tcp closes the socket when the handler returns.


def format_address(address: Any) -> str:
    """'127.0.0.1:8000' or '[::1]:8000' for a socket address."""
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def on_stop_signals(server: asocket.Server) -> asyncio.Event:
    """An event that the first SIGINT (Ctrl-C) or SIGTERM (kill) sets; a second
    signal cancels the handlers still running (server.close_clients())."""
    stop = asyncio.Event()

    def on_signal() -> None:
        if not stop.is_set():
            stop.set()
        else:
            logging.info("closing %d connection(s) now", server.active_connections)
            server.close_clients()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    return stop


def fail(doing: str, exc: OSError) -> SystemExit:
    """Exit status 1 and one line on stderr ("echo_server: cannot ...: reason"), for a
    mistake (a port in use, a host that does not resolve), not a traceback."""
    # The errno's message alone: serve_tcp's own message repeats the address.
    reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or exc
    return SystemExit(f"echo_server: {doing}: {reason}")


async def serve(args: argparse.Namespace) -> None:
    try:
        server = await asocket.serve_tcp(
            echo,
            args.host,
            args.port,  # 0: the OS picks a free port; we print the one it chose
            max_connections=args.max_connections,
            grace_period=args.grace_period,
        )
    except OSError as exc:
        raise fail(f"cannot listen on {format_address((args.host, args.port))}", exc) from None
    stop = on_stop_signals(server)
    # `async with` closes the server on exit: close() stops accepting, then
    # wait_closed() lets the handlers finish for up to grace_period seconds.
    async with server:
        for listener in server.sockets:
            print(f"listening on {format_address(listener.getsockname())}", flush=True)
        await stop.wait()
        server.close()  # stop accepting now; leaving `async with` waits for the handlers
        logging.info(
            "shutting down: %d connection(s) open (Ctrl-C again to close them now)",
            server.active_connections,
        )
    logging.info("stopped")


def runner(use_uvloop: bool) -> Callable[[Coroutine[Any, Any, None]], None]:
    """asyncio.run, or uvloop.run if asked."""
    if not use_uvloop:
        return asyncio.run
    try:
        import uvloop  # imported only when asked: the example runs without it
    except ImportError:
        raise SystemExit("echo_server: --uvloop needs uvloop: pip install uvloop") from None
    return uvloop.run


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
        description="Async TCP echo server (asocket.serve_tcp). Stop it with Ctrl-C or SIGTERM."
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=8000,
        help="port; 0 picks a free one (default: %(default)s)",
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
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (must be installed)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    runner(args.uvloop)(serve(args))


if __name__ == "__main__":
    main()
