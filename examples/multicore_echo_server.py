"""The async echo server on every core: N worker processes share one port.

One event loop runs on one core. To use them all, start one process per
core, each with its own listening socket on the same port: with
SO_REUSEPORT (Linux) the kernel spreads incoming connections across them.

    python examples/multicore_echo_server.py --port 8000 --workers 4
    printf 'hello\\n' | nc -N 127.0.0.1 8000

How it fits together:

* The parent binds (but never listens on) a SO_REUSEPORT socket first. That
  holds the port, and with --port 0 picks it: each worker asking for port 0
  on its own would get a different one. A bound socket that does not listen
  receives no connections, so the kernel only hands them to the workers.
* Each worker runs ``asocket.serve_tcp(..., reuse_port=True)`` on its own
  event loop and reports its pid to the parent once it is listening; then
  the parent prints "listening on HOST:PORT (N workers: pids ...)".
* SIGINT (Ctrl-C) or SIGTERM to the parent is forwarded to the workers as
  SIGTERM; each shuts down gracefully (see echo_server.py; a second signal
  closes the open connections at once) and the parent exits, with status 0
  if they all did. The workers ignore SIGINT: a Ctrl-C at a terminal signals
  the whole process group, and a worker must stop once, when the parent
  says so. Should a worker die, the parent stops the others; should the
  parent die, even by SIGKILL, the workers notice and stop.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

import asocket
import asocket.sync

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}  # what stops the server (the parent's)
POLL = 0.2  # seconds: how often the parent looks for a stop signal while it waits

# -- a worker process ----------------------------------------------------------------


async def echo(sock: asocket.socket, address: Any) -> None:
    """Handle one connection: send back every byte until the client closes its side."""
    try:
        while data := await sock.recv(65536):
            await sock.sendall(data)
    except ConnectionError:
        pass  # the client reset the connection: nothing to clean up


async def worker_serve(args: argparse.Namespace, port: int, ready: Connection) -> None:
    try:
        server = await asocket.serve_tcp(
            echo,
            args.host,
            port,
            reuse_port=True,  # SO_REUSEPORT: share the port with the other workers
            max_connections=args.max_connections,
            grace_period=args.grace_period,
        )
    except OSError as exc:
        raise SystemExit(f"multicore_echo_server: worker {os.getpid()}: {exc}") from None
    stop = asyncio.Event()

    def on_sigterm() -> None:  # the parent's: the first stops accepting, a second
        if not stop.is_set():  # closes the connections
            stop.set()
        else:
            server.close_clients()

    # SIGTERM only: SIGINT stays ignored, as the parent started this process.
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, on_sigterm)

    # multiprocessing gives each child a descriptor that becomes readable when the
    # parent process ends, however it ends: watch it, so no worker outlives the parent.
    parent = multiprocessing.parent_process()
    if parent is not None:

        def parent_died() -> None:
            loop.remove_reader(parent.sentinel)  # it stays readable: watch it once
            stop.set()

        loop.add_reader(parent.sentinel, parent_died)

    async with server:
        ready.send(os.getpid())  # tell the parent this worker is listening
        ready.close()
        await stop.wait()
        server.close()  # stop accepting now; leaving `async with` waits for the handlers


def worker_main(args: argparse.Namespace, port: int, ready: Connection) -> None:
    """The entry point of a worker process."""
    # Blocked in the parent when it started this process: the loop's handler needs it.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s worker {os.getpid()} %(levelname)s %(message)s"
    )
    runner(args.uvloop)(worker_serve(args, port, ready))
    # The loop has put SIGTERM back to its default: a late one from the parent (a
    # second Ctrl-C) must not kill a worker that has already stopped.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def runner(use_uvloop: bool) -> Callable[[Coroutine[Any, Any, None]], None]:
    """asyncio.run, or uvloop.run if asked."""
    if not use_uvloop:
        return asyncio.run
    try:
        import uvloop  # imported only when asked: the example runs without it
    except ImportError:
        raise SystemExit(
            "multicore_echo_server: --uvloop needs uvloop: pip install uvloop"
        ) from None
    return uvloop.run


# -- the parent process ----------------------------------------------------------------


def format_address(address: Any) -> str:
    """'127.0.0.1:8000' or '[::1]:8000' for a socket address."""
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def reserve_port(host: str, port: int) -> asocket.sync.socket:
    """A socket bound to (host, port) with SO_REUSEPORT, not listening: it holds the port."""
    family, type_, proto, _, address = asocket.sync.getaddrinfo(
        host, port, type=asocket.sync.SOCK_STREAM, flags=asocket.sync.AI_PASSIVE
    )[0]
    sock = asocket.sync.socket(family, type_, proto)
    try:
        sock.setsockopt(asocket.sync.SOL_SOCKET, asocket.sync.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def main() -> int:
    args = parse_args()
    # "spawn": each worker is a fresh interpreter that imports this file; nothing of
    # the parent's state (threads, event loop) is copied into it, as fork would.
    context = multiprocessing.get_context("spawn")
    workers: list[BaseProcess] = []
    stopping = False

    def stop_workers() -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.exitcode is None:
                worker.terminate()  # SIGTERM: the worker shuts down gracefully

    def wait_or_stop(objects: list[Any]) -> list[Any]:
        """The objects of ``objects`` ready within a moment; a stop signal taken meanwhile
        stops the workers."""
        ready = wait(objects, timeout=POLL)
        if signal.sigtimedwait(STOP_SIGNALS, 0) is not None:  # (a second one: again)
            stop_workers()
        return ready

    runner(args.uvloop)  # --uvloop without uvloop: say so here, not in every worker
    try:
        reserved = reserve_port(args.host, args.port)
    except OSError as exc:  # a port in use, a host that does not resolve...
        reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or exc
        where = format_address((args.host, args.port))
        print(f"multicore_echo_server: cannot listen on {where}: {reason}", file=sys.stderr)
        return 1
    # The parent takes SIGINT and SIGTERM synchronously: blocked, they stay pending
    # until its loop takes them (sigtimedwait), whatever it was doing when they came.
    # (A Python handler only runs once the main thread runs Python code again; this
    # parent spends its life blocked in wait(), and under load a Ctrl-C was seen left
    # unhandled there.) The workers inherit SIGINT ignored (Python keeps an ignored
    # SIGINT ignored): a terminal's Ctrl-C reaches the whole process group, and a
    # worker must stop once, on the SIGTERM the parent sends; each unblocks SIGTERM.
    # multiprocessing's resource tracker is started first: starting it unblocks both.
    resource_tracker.ensure_running()
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with reserved:
        address = reserved.getsockname()
        readers = []
        for number in range(args.workers):
            reader, writer = context.Pipe(duplex=False)
            process = context.Process(
                target=worker_main, args=(args, address[1], writer), name=f"worker {number}"
            )
            process.start()
            writer.close()  # the worker has its own copy: EOF here if it dies unready
            workers.append(process)
            readers.append(reader)
        pids: dict[Any, int] = {}  # each worker's "listening", by its pipe
        while len(pids) < len(readers) and not stopping:
            for reader in wait_or_stop([r for r in readers if r not in pids]):
                try:
                    pids[reader] = reader.recv()
                except EOFError:
                    print("multicore_echo_server: a worker failed to start", file=sys.stderr)
                    stop_workers()
                    break
        if not stopping:
            pid_list = ", ".join(str(pids[reader]) for reader in readers)
            print(
                f"listening on {format_address(address)} ({len(pids)} workers: pids {pid_list})",
                flush=True,
            )
        # Wait for the workers to end. One ending on its own means trouble: stop the rest.
        while running := [worker for worker in workers if worker.exitcode is None]:
            wait_or_stop([worker.sentinel for worker in running])
            for worker in running:
                if worker.exitcode is not None and not stopping:
                    print(f"{worker.name} exited ({worker.exitcode}): stopping", file=sys.stderr)
                    stop_workers()
    return 0 if all(worker.exitcode == 0 for worker in workers) else 1


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
        description="Async TCP echo server in N worker processes sharing one port "
        "(SO_REUSEPORT, Linux). Stop it with Ctrl-C or SIGTERM."
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
        "--workers",
        type=count,
        default=os.cpu_count() or 1,
        help="worker processes (default: the number of CPUs, %(default)s)",
    )
    parser.add_argument(
        "--max-connections",
        type=count,
        default=1000,
        help="connections each worker serves at once (default: %(default)s)",
    )
    parser.add_argument(
        "--grace-period",
        type=seconds,
        default=5.0,
        help="seconds open connections get to finish on shutdown (default: %(default)s)",
    )
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (must be installed)")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
