"""The command line, ``python -m asocket``: ``demo``, ``echo-server``, ``echo-client``.

``echo-server`` and ``echo-client`` run on the async face (asyncio's default
loop, or uvloop with ``--uvloop``) or, with ``--sync``, on the sync face and
threads. uvloop is imported only when ``--uvloop`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from typing import Any

import asocket
import asocket.sync

from ._demo import demo

PROG = "python -m asocket"
DEFAULT_HOST = "127.0.0.1"
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
CHUNK = 65536
"""The client sends a long message in pieces this big, reading each one's echo before the next."""
MAX_DATAGRAM = 65535
GRACE_PERIOD = 5.0
"""``serve_tcp``'s default: how long open connections may go on after a stop signal."""


class CommandError(Exception):
    """A failure reported as one line on stderr, with exit status 1."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    words = list(sys.argv[1:] if argv is None else argv)
    if not words or (words[0].startswith("-") and words[0] not in ("-h", "--help", "--version")):
        words.insert(0, "demo")  # no command: the demo, so `python -m asocket --uvloop` works
    args = _parser().parse_args(words)
    _check(args)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except CommandError as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # stdout closed early (`| head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130


# -- arguments --------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="asocket: the socket module, awaitable on asyncio, plus a blocking face. "
        "With no command, runs demo (`%(prog)s --uvloop` is `%(prog)s demo --uvloop`).",
    )
    parser.add_argument("--version", action="version", version=f"asocket {asocket.__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")

    demo_parser = commands.add_parser(
        "demo",
        help="both faces talk to a loopback echo server, then exit (the default)",
        description="Start an echo server on 127.0.0.1, talk to it with the async face and "
        "the sync face, show a timeout and a non-blocking call, and exit. Bounded: a few "
        "seconds at most, loopback only.",
    )
    demo_parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    demo_parser.set_defaults(run=_run_demo, parser=demo_parser)

    server = commands.add_parser(
        "echo-server",
        help="serve an echo service until SIGINT or SIGTERM",
        description="Echo every byte back on each TCP or Unix connection (a task per "
        "connection; a thread with --sync), or every UDP datagram to its sender. Prints "
        "'listening on ADDRESS' once ready. On SIGINT or SIGTERM stops accepting, lets open "
        "connections finish for up to --grace-period seconds (a second signal cuts this "
        "short), "
        "closes the rest and exits 0.",
    )
    _add_endpoint_options(server, port_help="port to listen on (default: 0, any free port)")
    server.add_argument(
        "--max-connections",
        type=_positive_int,
        metavar="N",
        help="serve at most N connections at once; more wait to be accepted (TCP, --unix)",
    )
    server.add_argument(
        "--grace-period",
        type=_seconds,
        metavar="SECONDS",
        help="on shutdown, how long open connections may go on "
        f"(TCP, --unix; default: {GRACE_PERIOD:g})",
    )
    server.set_defaults(run=_run_echo_server, parser=server)

    client = commands.add_parser(
        "echo-client",
        help="send messages to an echo server and print the replies",
        description="Connect to an echo server, send each MESSAGE (or, with none, each line "
        "of stdin) and write its echo to stdout: a MESSAGE's echo followed by a newline, a "
        "line's echo as it came back. Exits 1 with a one-line error when the server cannot "
        "be reached, does not answer within --timeout, or closes the connection early.",
    )
    client.add_argument("message", nargs="*", metavar="MESSAGE", help="a message to send")
    _add_endpoint_options(client, port_help="the server's port (required unless --unix)")
    client.add_argument(
        "--timeout",
        type=_positive_float,
        default=5.0,
        metavar="SECONDS",
        help="give up on connecting or on an echo after this long (default: 5)",
    )
    client.set_defaults(run=_run_echo_client, parser=client)
    return parser


def _add_endpoint_options(parser: argparse.ArgumentParser, port_help: str) -> None:
    """The options ``echo-server`` and ``echo-client`` share: where, which protocol, which face."""
    parser.add_argument("--host", help=f"IP address or host name (default: {DEFAULT_HOST})")
    parser.add_argument("--port", type=_port, help=port_help)
    protocol = parser.add_mutually_exclusive_group()
    protocol.add_argument("--udp", action="store_true", help="UDP datagrams instead of TCP")
    protocol.add_argument(
        "--unix", metavar="PATH", help="a Unix stream socket at PATH instead of TCP"
    )
    face = parser.add_mutually_exclusive_group()
    face.add_argument("--uvloop", action="store_true", help="run the async face on uvloop")
    face.add_argument(
        "--sync", action="store_true", help="run the sync face (asocket.sync) on threads"
    )


def _check(args: argparse.Namespace) -> None:
    """Reject option combinations argparse cannot express, as argparse rejects others."""
    if args.command == "demo":
        return
    parser: argparse.ArgumentParser = args.parser
    if args.unix is not None and (args.host is not None or args.port is not None):
        parser.error("--unix PATH replaces --host and --port")
    if args.command == "echo-client" and args.unix is None and args.port is None:
        parser.error("--port is required (or --unix PATH)")
    if args.command == "echo-server" and args.udp:
        for option in ("max_connections", "grace_period"):
            if getattr(args, option) is not None:
                parser.error(f"--{option.replace('_', '-')} applies to TCP and --unix, not --udp")


def _port(text: str) -> int:
    if text.isdigit() and int(text) <= 65535:
        return int(text)
    raise argparse.ArgumentTypeError(f"not a port number (0-65535): {text!r}")


def _positive_int(text: str) -> int:
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return value


# -- running ----------------------------------------------------------------------------


def _run_loop(main: Callable[[], Coroutine[Any, Any, int]], use_uvloop: bool) -> int:
    """Run ``main()`` on asyncio's default loop or, with ``use_uvloop``, on uvloop."""
    if not use_uvloop:
        return asyncio.run(main())
    try:
        import uvloop
    except ImportError:
        raise CommandError("--uvloop needs uvloop installed (pip install uvloop)") from None
    return uvloop.run(main())


def _run_demo(args: argparse.Namespace) -> int:
    return _run_loop(lambda: asyncio.wait_for(demo(), 30), args.uvloop)


def _run_echo_server(args: argparse.Namespace) -> int:
    if args.sync:
        return _echo_server_sync(args)
    return _run_loop(lambda: _echo_server_async(args), args.uvloop)


def _run_echo_client(args: argparse.Namespace) -> int:
    messages: Iterable[bytes]
    if args.message:  # as given: os.fsencode undoes how Python decoded argv
        messages, newline = [os.fsencode(message) for message in args.message], b"\n"
    else:  # one line at a time, so that the client answers as the lines are typed
        messages, newline = iter(sys.stdin.buffer.readline, b""), b""
    if args.sync:
        return _echo_client_sync(args, messages, newline)
    return _run_loop(lambda: _echo_client_async(args, messages, newline), args.uvloop)


def _address(address: Any) -> str:
    """``HOST:PORT`` (``[HOST]:PORT`` for IPv6) for an IP address; the path for a Unix one."""
    if isinstance(address, tuple):
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return os.fsdecode(address)


def _endpoint(args: argparse.Namespace) -> str:
    """The address the options name, for messages."""
    if args.unix is not None:
        return str(args.unix)
    return _address((args.host or DEFAULT_HOST, args.port or 0))


def _describe(exc: OSError, timeout: float | None = None) -> str:
    """What went wrong, in a few words."""
    if isinstance(exc, TimeoutError) and timeout is not None:
        return f"timed out after {timeout:g} s"
    return exc.strerror or str(exc) or type(exc).__name__


def _announce(addresses: Iterable[Any]) -> None:
    for address in addresses:
        print(f"listening on {_address(address)}", flush=True)


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


# -- echo-server, async face --------------------------------------------------------------


async def _echo_server_async(args: argparse.Namespace) -> int:
    grace = GRACE_PERIOD if args.grace_period is None else args.grace_period
    try:
        if args.udp:
            udp = await _open_udp_async(args.host or DEFAULT_HOST, args.port or 0)
        elif args.unix is not None:
            server = await asocket.serve_unix(
                _echo_stream_async,
                args.unix,
                max_connections=args.max_connections,
                grace_period=grace,
            )
        else:
            server = await asocket.serve_tcp(
                _echo_stream_async,
                args.host or DEFAULT_HOST,
                args.port or 0,
                max_connections=args.max_connections,
                grace_period=grace,
            )
    except OSError as exc:
        raise CommandError(f"cannot listen on {_endpoint(args)}: {_describe(exc)}") from None
    if args.udp:
        with udp, _on_stop_signal_async(udp.close):
            _announce([udp.getsockname()])
            await _echo_datagrams_async(udp)
    else:
        async with server:
            # The first signal stops accepting; a second one ends the grace period.
            with _on_stop_signal_async(server.close, server.close_clients):
                _announce(sock.getsockname() for sock in server.sockets)
                await server.serve_forever()
    return 0


@contextlib.contextmanager
def _on_stop_signal_async(
    stop: Callable[[], object], again: Callable[[], object] | None = None
) -> Iterator[None]:
    """Within the block, on SIGINT or SIGTERM call ``stop()`` in the running loop, and
    ``again()`` (if given) on each later one."""
    loop = asyncio.get_running_loop()
    signalled = False

    def on_signal() -> None:
        nonlocal signalled
        if signalled and again is not None:
            again()
        else:
            signalled = True
            stop()

    try:
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, on_signal)
    except NotImplementedError:  # pragma: no cover - Windows: Ctrl-C ends the run
        pass
    try:
        yield
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


async def _echo_stream_async(sock: asocket.socket, address: Any) -> None:
    """Send back every byte ``sock`` receives, until the peer shuts down its side."""
    try:
        while data := await sock.recv(CHUNK):
            await sock.sendall(data)
    except ConnectionError:
        pass  # the peer reset the connection: nobody is left to echo to


async def _open_udp_async(host: str, port: int) -> asocket.socket:
    """A UDP socket bound to the first address ``host`` resolves to."""
    infos = await asocket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
    family, type_, proto, _, address = infos[0]
    sock = asocket.socket(family, type_, proto)
    try:
        await sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


async def _echo_datagrams_async(sock: asocket.socket) -> None:
    """Send each datagram back to its sender, until ``sock`` is closed."""
    while True:
        try:
            data, address = await sock.recvfrom(MAX_DATAGRAM)
        except OSError as exc:
            if exc.errno == errno.EBADF:
                return  # closed on a stop signal
            raise
        try:
            await sock.sendto(data, address)
        except OSError:
            pass  # a reply that cannot be sent is lost, as datagrams may be


# -- echo-server, sync face ---------------------------------------------------------------


def _echo_server_sync(args: argparse.Namespace) -> int:
    grace = GRACE_PERIOD if args.grace_period is None else args.grace_period
    with _stop_signals_blocked():  # before any thread starts: they all inherit the mask
        try:
            if args.udp:
                udp = _open_udp_sync(args.host or DEFAULT_HOST, args.port or 0)
            elif args.unix is not None:
                server = asocket.sync.serve_unix(
                    _echo_stream_sync,
                    args.unix,
                    max_connections=args.max_connections,
                    grace_period=grace,
                )
            else:
                server = asocket.sync.serve_tcp(
                    _echo_stream_sync,
                    args.host or DEFAULT_HOST,
                    args.port or 0,
                    max_connections=args.max_connections,
                    grace_period=grace,
                )
        except OSError as exc:
            raise CommandError(f"cannot listen on {_endpoint(args)}: {_describe(exc)}") from None
        if args.udp:
            with udp:
                _on_stop_signal_sync(udp.close)
                _announce([udp.getsockname()])
                _echo_datagrams_sync(udp)
        else:
            with server:
                # The first signal stops accepting; a second one ends the grace period.
                _on_stop_signal_sync(server.close, server.close_clients)
                _announce(sock.getsockname() for sock in server.sockets)
                server.serve_forever()
    return 0


@contextlib.contextmanager
def _stop_signals_blocked() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM wait, blocked, for ``_on_stop_signal_sync``."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows: Ctrl-C ends the run
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _on_stop_signal_sync(
    stop: Callable[[], object], again: Callable[[], object] | None = None
) -> None:
    """On SIGINT or SIGTERM (blocked by ``_stop_signals_blocked``), call ``stop()``, and
    ``again()`` (if given) on each later one.

    A thread takes the signal with ``sigwait``: no signal handler interrupts a
    thread that may hold a lock ``stop`` needs.
    """
    if not hasattr(signal, "sigwait"):  # pragma: no cover - Windows
        return

    def wait_then_stop() -> None:
        signal.sigwait(STOP_SIGNALS)
        stop()
        while again is not None:
            signal.sigwait(STOP_SIGNALS)
            again()

    threading.Thread(target=wait_then_stop, name="asocket stop signal", daemon=True).start()


def _echo_stream_sync(sock: asocket.sync.socket, address: Any) -> None:
    """Send back every byte ``sock`` receives, until the peer shuts down its side."""
    try:
        while data := sock.recv(CHUNK):
            sock.sendall(data)
    except ConnectionError:
        pass  # the peer reset the connection: nobody is left to echo to


def _open_udp_sync(host: str, port: int) -> asocket.sync.socket:
    """A UDP socket bound to the first address ``host`` resolves to."""
    infos = asocket.sync.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
    family, type_, proto, _, address = infos[0]
    sock = asocket.sync.socket(family, type_, proto)
    try:
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _echo_datagrams_sync(sock: asocket.sync.socket) -> None:
    """Send each datagram back to its sender, until ``sock`` is closed."""
    while True:
        try:
            data, address = sock.recvfrom(MAX_DATAGRAM)
        except OSError as exc:
            if exc.errno == errno.EBADF:
                return  # closed on a stop signal
            raise
        try:
            sock.sendto(data, address)
        except OSError:
            pass  # a reply that cannot be sent is lost, as datagrams may be


# -- echo-client ------------------------------------------------------------------------


async def _echo_client_async(
    args: argparse.Namespace, messages: Iterable[bytes], newline: bytes
) -> int:
    try:
        sock = await _connect_async(args)
    except OSError as exc:
        raise CommandError(
            f"cannot connect to {_endpoint(args)}: {_describe(exc, args.timeout)}"
        ) from None
    with sock:
        for message in messages:  # stdin is read blocking: the loop has nothing else to do
            reply: bytes | bytearray
            try:
                if args.udp:
                    await sock.send(message)
                    reply = await sock.recv(MAX_DATAGRAM)
                else:
                    reply = bytearray()
                    for start in range(0, len(message), CHUNK):
                        piece = message[start : start + CHUNK]
                        await sock.sendall(piece)
                        while len(reply) < start + len(piece):
                            if not (data := await sock.recv(start + len(piece) - len(reply))):
                                raise _closed_early(args)
                            reply += data
            except OSError as exc:
                raise _no_echo(args, exc) from None
            _write(bytes(reply) + newline)
    return 0


async def _connect_async(args: argparse.Namespace) -> asocket.socket:
    """A socket connected to the server the options name, with their timeout."""
    if args.unix is None and not args.udp:
        return await asocket.create_connection(
            (args.host or DEFAULT_HOST, args.port), timeout=args.timeout
        )
    if args.unix is not None:
        family, type_, proto, address = socket.AF_UNIX, socket.SOCK_STREAM, 0, args.unix
    else:
        infos = await asocket.getaddrinfo(
            args.host or DEFAULT_HOST, args.port, type=socket.SOCK_DGRAM
        )
        family, type_, proto, _, address = infos[0]
    sock = asocket.socket(family, type_, proto)
    try:
        sock.settimeout(args.timeout)
        await sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _echo_client_sync(args: argparse.Namespace, messages: Iterable[bytes], newline: bytes) -> int:
    try:
        sock = _connect_sync(args)
    except OSError as exc:
        raise CommandError(
            f"cannot connect to {_endpoint(args)}: {_describe(exc, args.timeout)}"
        ) from None
    with sock:
        for message in messages:
            reply: bytes | bytearray
            try:
                if args.udp:
                    sock.send(message)
                    reply = sock.recv(MAX_DATAGRAM)
                else:
                    reply = bytearray()
                    for start in range(0, len(message), CHUNK):
                        piece = message[start : start + CHUNK]
                        sock.sendall(piece)
                        while len(reply) < start + len(piece):
                            if not (data := sock.recv(start + len(piece) - len(reply))):
                                raise _closed_early(args)
                            reply += data
            except OSError as exc:
                raise _no_echo(args, exc) from None
            _write(bytes(reply) + newline)
    return 0


def _connect_sync(args: argparse.Namespace) -> asocket.sync.socket:
    """A socket connected to the server the options name, with their timeout."""
    if args.unix is None and not args.udp:
        return asocket.sync.create_connection(
            (args.host or DEFAULT_HOST, args.port), timeout=args.timeout
        )
    if args.unix is not None:
        family, type_, proto, address = socket.AF_UNIX, socket.SOCK_STREAM, 0, args.unix
    else:
        infos = asocket.sync.getaddrinfo(
            args.host or DEFAULT_HOST, args.port, type=socket.SOCK_DGRAM
        )
        family, type_, proto, _, address = infos[0]
    sock = asocket.sync.socket(family, type_, proto)
    try:
        sock.settimeout(args.timeout)
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _closed_early(args: argparse.Namespace) -> CommandError:
    return CommandError(f"{_endpoint(args)} closed the connection before echoing everything")


def _no_echo(args: argparse.Namespace, exc: OSError) -> CommandError:
    return CommandError(f"no echo from {_endpoint(args)}: {_describe(exc, args.timeout)}")
