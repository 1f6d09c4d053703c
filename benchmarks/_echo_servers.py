"""Echo servers, one per implementation, each run as its own process by servers.py.

    python benchmarks/_echo_servers.py IMPL [--mode echo|stream] [--block N]

The server listens on 127.0.0.1 (port chosen by the kernel), prints
``port N`` on stdout, then serves until it is killed (SIGTERM), its parent
dies (Linux), or ``--max-seconds`` pass (SIGALRM): it never outlives the run.

``--mode echo`` sends back every byte it receives (``recv(65536)`` then
``sendall``, or the implementation's natural equivalent). ``--mode stream``
(threads only) ``sendall``s a block of ``--block`` bytes over and over until
the client goes away: the bulk workload.

Every server sets ``TCP_NODELAY`` on its connections (asyncio, uvloop and
trio's streams do it themselves), listens with a backlog of 1024, and ends a
connection quietly when the client closes or resets it.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import signal
import socket as stdlib_socket
import sys
import threading
from collections.abc import Callable, Coroutine
from types import ModuleType
from typing import Any, cast

HOST = "127.0.0.1"
BACKLOG = 1024
RECV = 65536


def _announce(port: int) -> None:
    """Tell servers.py the port, and where asocket came from if it is imported
    (the only line a server writes on stdout)."""
    module = sys.modules.get("asocket")
    where = (
        f" {os.path.dirname(os.path.dirname(module.__file__))}"
        if module and module.__file__
        else ""
    )
    sys.stdout.write(f"port {port}{where}\n")
    sys.stdout.flush()


def _bounded_life(max_seconds: float) -> None:
    """End this process when its parent dies (Linux) or after ``max_seconds``."""
    if sys.platform.startswith("linux"):
        try:  # prctl(PR_SET_PDEATHSIG, SIGTERM)
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if hasattr(signal, "alarm"):
        signal.alarm(max(1, int(max_seconds)))  # SIGALRM's default action ends the process


# --- threads: the stdlib and asocket.sync, the same code -------------------------------


def _threads(module: ModuleType, mode: str, block: int) -> None:
    """Accept in the main thread, serve each connection in its own thread."""
    listener = module.socket(module.AF_INET, module.SOCK_STREAM)
    listener.setsockopt(module.SOL_SOCKET, module.SO_REUSEADDR, 1)
    listener.bind((HOST, 0))
    listener.listen(BACKLOG)
    _announce(listener.getsockname()[1])
    payload = b"x" * block

    def echo(conn: Any) -> None:
        with conn:
            try:
                while data := conn.recv(RECV):
                    conn.sendall(data)
            except OSError:
                pass

    def stream(conn: Any) -> None:
        with conn:
            try:
                while True:
                    conn.sendall(payload)
            except OSError:
                pass

    target = echo if mode == "echo" else stream
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(module.IPPROTO_TCP, module.TCP_NODELAY, 1)
        threading.Thread(target=target, args=(conn,), daemon=True).start()


def _sync_serve_tcp() -> None:
    """asocket.sync.serve_tcp: the sync face's own server helper (a thread per connection)."""
    import asocket.sync

    def echo(conn: asocket.sync.socket, address: Any) -> None:
        conn.setsockopt(asocket.sync.IPPROTO_TCP, asocket.sync.TCP_NODELAY, 1)
        try:
            while data := conn.recv(RECV):
                conn.sendall(data)
        except OSError:
            pass

    server = asocket.sync.serve_tcp(echo, HOST, 0, backlog=BACKLOG)
    _announce(server.sockets[0].getsockname()[1])
    server.serve_forever()


# --- asocket on an event loop ----------------------------------------------------------


async def _asocket_main() -> None:
    import asocket

    async def echo(sock: asocket.socket, address: Any) -> None:
        sock.setsockopt(asocket.IPPROTO_TCP, asocket.TCP_NODELAY, 1)
        try:
            while data := await sock.recv(RECV):
                await sock.sendall(data)
        except OSError:
            pass

    server = await asocket.serve_tcp(echo, HOST, 0, backlog=BACKLOG)
    _announce(server.sockets[0].getsockname()[1])
    await asyncio.Event().wait()  # until killed


# --- asyncio (or uvloop) streams and Protocol ------------------------------------------


async def _streams_main() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(RECV):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        writer.close()

    server = await asyncio.start_server(echo, HOST, 0, backlog=BACKLOG)
    _announce(server.sockets[0].getsockname()[1])
    await asyncio.Event().wait()


class _EchoProtocol(asyncio.Protocol):
    """Writes back what it receives; the transport buffers what the kernel does not take."""

    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def _protocol_main() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_EchoProtocol, HOST, 0, backlog=BACKLOG)
    _announce(server.sockets[0].getsockname()[1])
    await asyncio.Event().wait()


def _run_asyncio(main: Callable[[], Coroutine[Any, Any, None]], uvloop: bool) -> None:
    if uvloop:
        import uvloop as uv

        factory: Callable[[], asyncio.AbstractEventLoop] = uv.new_event_loop
    else:
        factory = asyncio.SelectorEventLoop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())


# --- trio ------------------------------------------------------------------------------


def _trio_serve_tcp() -> None:
    import trio

    async def echo(stream: trio.SocketStream) -> None:
        try:
            while data := await stream.receive_some(RECV):
                await stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                lambda task_status: trio.serve_tcp(
                    echo, 0, host=HOST, backlog=BACKLOG, task_status=task_status
                )
            )
            _announce(listeners[0].socket.getsockname()[1])

    trio.run(main)


def _trio_socket() -> None:
    import trio

    async def echo(sock: trio.socket.SocketType) -> None:
        with sock:
            try:
                while data := await sock.recv(RECV):
                    view = memoryview(data)
                    while view:
                        sent = await sock.send(view)
                        view = view[sent:]
            except OSError:
                pass

    async def main() -> None:
        listener = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_STREAM)
        listener.setsockopt(trio.socket.SOL_SOCKET, trio.socket.SO_REUSEADDR, 1)
        await listener.bind((HOST, 0))
        listener.listen(BACKLOG)
        _announce(listener.getsockname()[1])
        async with trio.open_nursery() as nursery:
            while True:
                conn, _ = await listener.accept()
                conn.setsockopt(trio.socket.IPPROTO_TCP, trio.socket.TCP_NODELAY, 1)
                nursery.start_soon(echo, conn)

    trio.run(main)


def _sync_module() -> ModuleType:
    import asocket.sync

    return asocket.sync


# name -> (modes it serves, how to run it)
IMPLS: dict[str, tuple[tuple[str, ...], Callable[[str, int], None]]] = {
    "asocket-asyncio": (("echo",), lambda m, b: _run_asyncio(_asocket_main, uvloop=False)),
    "asocket-uvloop": (("echo",), lambda m, b: _run_asyncio(_asocket_main, uvloop=True)),
    "asocket-sync": (("echo", "stream"), lambda m, b: _threads(_sync_module(), m, b)),
    "asocket-sync-serve_tcp": (("echo",), lambda m, b: _sync_serve_tcp()),
    "asyncio-streams": (("echo",), lambda m, b: _run_asyncio(_streams_main, uvloop=False)),
    "asyncio-protocol": (("echo",), lambda m, b: _run_asyncio(_protocol_main, uvloop=False)),
    "uvloop-streams": (("echo",), lambda m, b: _run_asyncio(_streams_main, uvloop=True)),
    "uvloop-protocol": (("echo",), lambda m, b: _run_asyncio(_protocol_main, uvloop=True)),
    "stdlib-threads": (("echo", "stream"), lambda m, b: _threads(stdlib_socket, m, b)),
    "trio-serve_tcp": (("echo",), lambda m, b: _trio_serve_tcp()),
    "trio-socket": (("echo",), lambda m, b: _trio_socket()),
}


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, bound this process's life, and serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("impl", choices=sorted(IMPLS))
    parser.add_argument("--mode", choices=("echo", "stream"), default="echo")
    parser.add_argument("--block", type=int, default=65536, help="stream mode: bytes per sendall")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    modes, run = IMPLS[args.impl]
    if args.mode not in modes:
        parser.error(f"{args.impl} serves only {', '.join(modes)}")
    _bounded_life(args.max_seconds)
    try:
        run(args.mode, args.block)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
