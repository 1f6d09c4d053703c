"""A threaded TCP echo server: a plain stdlib-style script on asocket.sync.

This is the classic "one thread per connection" socket server as you would
write it with the stdlib; the only change is the import line:

    import asocket.sync as socket   # instead of: import socket

Run it and talk to it with sync_echo_client.py, echo_client.py, nc or socat:

    python examples/sync_echo_server.py --port 8000
    printf 'hello\\n' | nc -N 127.0.0.1 8000

Ctrl-C (SIGINT) or SIGTERM stops it: it stops accepting, closes the open
connections and exits with status 0. A thread accepts; the main thread waits
for the signal, then closes the listening socket and the connections. Closing
a socket wakes the thread blocked in its accept() or recv() with
OSError(EBADF), which the stdlib does not promise (asocket.sync does), so no
thread is left hanging.

(asocket.sync.serve_tcp(handler, host, port) does all of this for you, with
a cap on connections and a grace period; this script shows the code it saves.)
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

import asocket.sync as socket  # instead of: import socket

connections: set[socket.socket] = set()  # the open ones, to close on shutdown
connections_lock = threading.Lock()
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def echo(conn: socket.socket, address: Any) -> None:
    """Runs in its own thread: send back every byte until the client closes its side."""
    try:
        with conn:
            while data := conn.recv(65536):  # b"" means the client closed its side
                conn.sendall(data)
    except OSError:
        pass  # reset by the client, or closed by the main thread on shutdown
    finally:
        with connections_lock:
            connections.discard(conn)


def format_address(address: Any) -> str:
    """'127.0.0.1:8000' or '[::1]:8000' for a socket address."""
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def fail(doing: str, exc: OSError) -> SystemExit:
    """Exit status 1 and one line on stderr ("sync_echo_server: cannot ...: reason"), for a
    mistake (a port in use, a host that does not resolve), not a traceback."""
    reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or exc
    return SystemExit(f"sync_echo_server: {doing}: {reason}")


def port_number(text: str) -> int:
    """--port's type: an integer from 0 to 65535 (argparse rejects anything else)."""
    if not (text.isdigit() and int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"not a port number (0-65535): {text!r}")
    return int(text)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Threaded TCP echo server on asocket.sync (a drop-in for the stdlib socket)."
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
    return parser.parse_args()


def accept_connections(server: socket.socket, threads: list[threading.Thread]) -> None:
    """The accepting thread: a thread per connection, until the main thread closes
    ``server`` (which wakes the accept() blocked here with OSError(EBADF))."""
    while True:
        try:
            conn, address = server.accept()
        except OSError:
            if server.fileno() == -1:
                return  # closed by the main thread: shutting down
            raise  # anything else ends the server (the main thread sees this thread end)
        with connections_lock:
            connections.add(conn)
        thread = threading.Thread(target=echo, args=(conn, address), daemon=True)
        thread.start()
        threads[:] = [t for t in threads if t.is_alive()] + [thread]


def main() -> int:
    args = parse_args()
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    threads: list[threading.Thread] = []
    try:
        server = socket.create_server((args.host, args.port), family=family)
    except OSError as exc:  # a port in use, a host that does not resolve...
        raise fail(f"cannot listen on {format_address((args.host, args.port))}", exc) from None
    # Ctrl-C (SIGINT) and SIGTERM are taken by the main thread with sigwait, not by a
    # signal handler: a handler can run just before a blocking call (accept) begins, and
    # that call then blocks on, the signal spent (the stdlib has the same race). Blocked
    # from here on, in this thread and in every thread started later (they inherit it).
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    with server:
        print(f"listening on {format_address(server.getsockname())}", flush=True)
        acceptor = threading.Thread(target=accept_connections, args=(server, threads))
        acceptor.start()
        # Wait for a stop signal, looking at the accepting thread twice a second.
        stopped = None
        while stopped is None and acceptor.is_alive():
            stopped = signal.sigtimedwait(STOP_SIGNALS, 0.5)
    # The listening socket is closed, which woke the accepting thread: now end the
    # connections and wait for their threads.
    acceptor.join()
    with connections_lock:
        for conn in connections:
            conn.close()  # wakes the thread blocked in conn.recv() with OSError(EBADF)
    for thread in threads:
        thread.join()
    print("stopped", file=sys.stderr)
    return 0 if stopped else 1  # 1: the accepting thread ended on an error (printed)


if __name__ == "__main__":
    sys.exit(main())
