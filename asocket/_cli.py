"""The command line, ``python -m asocket``: ``demo``, ``echo-server``, ``echo-client``.

``echo-server`` and ``echo-client`` run on the async face (asyncio's default
loop, or uvloop with ``--uvloop``) or, with ``--sync``, on the sync face and
threads. uvloop is imported only when ``--uvloop`` is given.

Three parts, top to bottom: the arguments; the commands, each written once as
a plan that yields the calls that wait; the faces, each a driver that waits
for those calls its way (``await`` or blocking) and takes the stop signals its
way. The connection handler is ``_echo.echo`` / ``_echo.echo_sync``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import inspect
import os
import signal
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Coroutine, Generator, Iterable, Iterator, Sequence
from functools import partial
from typing import Any, TypeVar, cast

import asocket
import asocket.sync

from ._demo import demo
from ._echo import echo, echo_sync

PROG = "python -m asocket"
DEFAULT_HOST = "127.0.0.1"
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
CHUNK = 65536
"""The client sends a long message in pieces this big, reading each one's echo before the next."""
MAX_DATAGRAM = 65535
GRACE_PERIOD = 5.0
"""``serve_tcp``'s default: how long open connections may go on after a stop signal."""

_T = TypeVar("_T")


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
        "connections finish for up to --grace-period seconds (saying so on stderr; a second "
        "signal cuts this short), closes the rest and exits 0.",
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
    server.add_argument(
        "--tls-cert",
        metavar="CERT",
        help="serve TLS with this certificate chain (PEM; the key too unless --tls-key). "
        "A test pair: openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
        "-nodes -days 30 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 "
        "-keyout key.pem -out cert.pem",
    )
    server.add_argument("--tls-key", metavar="KEY", help="the private key for --tls-cert (PEM)")
    server.set_defaults(run=_run_echo_server, parser=server)

    client = commands.add_parser(
        "echo-client",
        help="send messages to an echo server and print the replies",
        description="Connect to an echo server, send each MESSAGE (or, with none, each line "
        "of stdin) and write its echo to stdout: a MESSAGE's echo followed by a newline, a "
        "line's echo as it came back. Exits 1 with a one-line error when the server cannot "
        "be reached, does not answer within --timeout, or closes the connection early; "
        "exits 0 at once on SIGINT (Ctrl-C) or SIGTERM.",
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
    client.add_argument(
        "--tls", action="store_true", help="connect with TLS (certificate verified)"
    )
    client.add_argument(
        "--cafile",
        metavar="FILE",
        help="with --tls: CA certificates to trust (default: the system's)",
    )
    client.add_argument(
        "--server-hostname",
        metavar="NAME",
        help="with --tls: the name the certificate must match (default: --host)",
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
    tls = args.tls_cert is not None if args.command == "echo-server" else args.tls
    if tls and (args.udp or args.unix is not None):
        parser.error("TLS runs over TCP: not with --udp or --unix")
    if args.command == "echo-server" and args.tls_key is not None and args.tls_cert is None:
        parser.error("--tls-key needs --tls-cert")
    if args.command == "echo-client" and not args.tls:
        for option in ("cafile", "server_hostname"):
            if getattr(args, option) is not None:
                parser.error(f"--{option.replace('_', '-')} needs --tls")
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


# -- the commands, written once --------------------------------------------------------------
#
# A command is a plan: a generator that does the work and yields each call that waits (a
# ``Step``: a callable taking no argument) to a face's driver, which makes the call, waits
# for it as its face waits (``await`` on the async face, blocking on the sync face) and
# sends the result back in (or throws the exception in). So ``data = yield
# partial(sock.recv, n)`` reads as ``data = await sock.recv(n)`` / ``sock.recv(n)``.

Step = Callable[[], Any]
"""A call that waits; on the async face it returns an awaitable."""
Plan = Generator[Step, Any, _T]


def _run_echo_server(args: argparse.Namespace) -> int:
    face = _face(args)
    return face.run(_echo_server(face, args))


def _run_echo_client(args: argparse.Namespace) -> int:
    face = _face(args)
    return face.run(_echo_client(face, args))


def _echo_server(face: _Face, args: argparse.Namespace) -> Plan[int]:
    """``echo-server``: listen, say where, echo until a stop signal; return the exit status."""
    grace = GRACE_PERIOD if args.grace_period is None else args.grace_period
    host, port = args.host or DEFAULT_HOST, args.port or 0  # TCP; UDP: _open
    limits = {"max_connections": args.max_connections, "grace_period": grace}
    stop = _StopPlan()
    with face.on_stop_signals(stop):  # from the start: a signal while starting is kept
        try:
            if args.udp:
                udp = yield from _open(face, args, "bind")
            elif args.unix is not None:
                server = yield partial(face.module.serve_unix, face.echo, args.unix, **limits)
            else:
                if args.tls_cert is not None:
                    limits["ssl"] = _server_context(args)
                server = yield partial(face.module.serve_tcp, face.echo, host, port, **limits)
        except OSError as exc:
            raise CommandError(f"cannot listen on {_endpoint(args)}: {_describe(exc)}") from None
        if args.udp:
            with udp:
                stop.arm(udp.close)  # the waiting recvfrom fails with EBADF
                _announce([udp.getsockname()])
                yield from _echo_datagrams(udp)
            return 0
        try:
            # The first signal stops accepting; a second one ends the grace period.
            stop.arm(partial(_stop_accepting, server, grace), server.close_clients)
            _announce(sock.getsockname() for sock in server.sockets)
            yield server.serve_forever
        finally:
            server.close()
            yield server.wait_closed
    return 0


def _stop_accepting(server: Any, grace: float) -> None:
    """The first stop signal: stop accepting; say so if connections are left to wait for.

    The line is printed before ``close()``: on the sync face this runs in the signal
    thread, and once the server is closed the main thread may exit mid-print."""
    if grace > 0 and (count := server.active_connections):
        print(
            f"{PROG} echo-server: stopped accepting; waiting up to {grace:g} s for "
            f"{count} open connection(s) to finish (SIGINT or SIGTERM again: close them now)",
            file=sys.stderr,
            flush=True,
        )
    server.close()


def _echo_datagrams(sock: Any) -> Plan[None]:
    """Send each datagram back to its sender, until ``sock`` is closed."""
    while True:
        try:
            data, address = yield partial(sock.recvfrom, MAX_DATAGRAM)
        except OSError as exc:
            if exc.errno == errno.EBADF:
                return  # closed on a stop signal
            raise
        try:
            yield partial(sock.sendto, data, address)
        except OSError:
            pass  # a reply that cannot be sent is lost, as datagrams may be


def _echo_client(face: _Face, args: argparse.Namespace) -> Plan[int]:
    """``echo-client``: send each message, write its echo; return the exit status.

    A stop signal (Ctrl-C) ends it at once, with status 0: the user is done.
    """
    next_message: Step
    if args.message:  # as given: os.fsencode undoes how Python decoded argv
        messages = [os.fsencode(message) for message in args.message]
        next_message, newline = partial(next, iter(messages), None), b"\n"
    else:  # one line at a time, so that the client answers as the lines are typed
        next_message, newline = face.stdin_lines(), b""
    with face.interrupted_by_stop_signals():
        try:
            try:
                sock = yield from _connect(face, args)
            except OSError as exc:
                raise CommandError(
                    f"cannot connect to {_endpoint(args)}: {_describe(exc, args.timeout)}"
                ) from None
            with sock:
                while (message := (yield next_message)) is not None:
                    try:
                        reply = yield from _exchange(sock, message, args)
                    except OSError as exc:
                        raise CommandError(
                            f"no echo from {_endpoint(args)}: {_describe(exc, args.timeout)}"
                        ) from None
                    _write(reply + newline)
        except KeyboardInterrupt:  # SIGINT or SIGTERM, on either face
            pass
    return 0


def _connect(face: _Face, args: argparse.Namespace) -> Plan[Any]:
    """A socket connected to the server the options name, with their timeout."""
    if args.unix is None and not args.udp:
        address = (args.host or DEFAULT_HOST, args.port)
        tls: dict[str, Any] = {}
        if args.tls:
            tls = {"ssl": ssl.create_default_context(cafile=args.cafile)}
            tls["server_hostname"] = args.server_hostname
        return (yield partial(face.module.create_connection, address, timeout=args.timeout, **tls))
    return (yield from _open(face, args, "connect", args.timeout))


def _server_context(args: argparse.Namespace) -> ssl.SSLContext:
    """The server's TLS context from ``--tls-cert``/``--tls-key`` (``OSError`` if unreadable)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(args.tls_cert, args.tls_key)
    except ssl.SSLError as exc:
        raise CommandError(f"cannot use --tls-cert {args.tls_cert}: {exc}") from None
    return context


def _open(
    face: _Face, args: argparse.Namespace, method: str, timeout: float | None = None
) -> Plan[Any]:
    """A UDP (``--udp``) or Unix (``--unix``) socket, bound or connected (``method``) to the
    address the options name (a host's first), in timeout mode with ``timeout``."""
    if args.unix is not None:
        family, type_, proto, address = socket.AF_UNIX, socket.SOCK_STREAM, 0, args.unix
    else:
        host, port = args.host or DEFAULT_HOST, args.port or 0
        flags = socket.AI_PASSIVE if method == "bind" else 0
        infos = yield partial(
            face.module.getaddrinfo, host, port, type=socket.SOCK_DGRAM, flags=flags
        )
        family, type_, proto, _, address = infos[0]
    sock = face.module.socket(family, type_, proto)
    try:
        sock.settimeout(timeout)
        yield partial(getattr(sock, method), address)
    except BaseException:
        sock.close()
        raise
    return sock


def _exchange(sock: Any, message: bytes, args: argparse.Namespace) -> Plan[bytes]:
    """Send ``message`` and return its echo: one datagram, or ``CHUNK`` bytes at a time."""
    if args.udp:
        yield partial(sock.send, message)
        return bytes((yield partial(sock.recv, MAX_DATAGRAM)))
    reply = bytearray()
    for start in range(0, len(message), CHUNK):
        piece = message[start : start + CHUNK]
        yield partial(sock.sendall, piece)
        while len(reply) < start + len(piece):
            if not (data := (yield partial(sock.recv, start + len(piece) - len(reply)))):
                raise CommandError(
                    f"{_endpoint(args)} closed the connection before echoing everything"
                )
            reply += data
    return bytes(reply)


class _StopPlan:
    """What the stop signals (SIGINT, SIGTERM) do: the first calls ``stop``, each later one
    ``again`` (if any). A signal that comes before ``arm()`` is acted on by ``arm()``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the sync face calls from a thread of its own
        self._signals = 0
        self._stop: Callable[[], object] | None = None
        self._again: Callable[[], object] | None = None

    def arm(self, stop: Callable[[], object], again: Callable[[], object] | None = None) -> None:
        """From now on, call ``stop`` on the first signal and ``again`` on each later one."""
        with self._lock:
            self._stop, self._again, signals = stop, again, self._signals
        if signals:
            stop()
        if signals > 1 and again is not None:
            again()

    def __call__(self) -> None:
        """A stop signal came."""
        with self._lock:
            self._signals += 1
            action = self._stop if self._signals == 1 else self._again
        if action is not None:
            action()


def _endpoint(args: argparse.Namespace) -> str:
    """The address the options name, for messages."""
    if args.unix is not None:
        return str(args.unix)
    return _address((args.host or DEFAULT_HOST, args.port or 0))


def _address(address: Any) -> str:
    """``HOST:PORT`` (``[HOST]:PORT`` for IPv6) for an IP address; the path for a Unix one."""
    if isinstance(address, tuple):
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return os.fsdecode(address)


def _describe(exc: OSError, timeout: float | None = None) -> str:
    """What went wrong, in a few words: the errno's message, without the address that
    some callers add to it (the message names the address once)."""
    if isinstance(exc, TimeoutError) and timeout is not None:
        return f"timed out after {timeout:g} s"
    if isinstance(exc, ssl.SSLCertVerificationError):  # its errno is OpenSSL's, not the OS's
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    if exc.errno is not None and exc.errno > 0 and not isinstance(exc, socket.gaierror):
        return os.strerror(exc.errno)
    return exc.strerror or str(exc) or type(exc).__name__


def _announce(addresses: Iterable[Any]) -> None:
    for address in addresses:
        print(f"listening on {_address(address)}", flush=True)


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


# -- the faces: how each one waits ---------------------------------------------------------------


def _face(args: argparse.Namespace) -> _Face:
    return _SyncFace() if args.sync else _AsyncFace(args.uvloop)


def _run_loop(main: Callable[[], Coroutine[Any, Any, _T]], use_uvloop: bool) -> _T:
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


class _AsyncFace:
    """The async face: a plan runs in a task on asyncio's loop (or uvloop's)."""

    module: Any = asocket
    echo: Any = staticmethod(echo)

    def __init__(self, use_uvloop: bool) -> None:
        self._use_uvloop = use_uvloop
        self._waiting = False  # awaiting a step: an interruption cancels the wait
        self._interrupted = False  # a stop signal came: raise KeyboardInterrupt in the plan

    def run(self, plan: Plan[_T]) -> _T:
        return _run_loop(lambda: self._drive(plan), self._use_uvloop)

    async def _drive(self, plan: Plan[_T]) -> _T:
        value: Any = None
        error: BaseException | None = None
        while True:
            if self._interrupted:
                self._interrupted, error = False, KeyboardInterrupt()
            try:
                step = plan.send(value) if error is None else plan.throw(error)
            except StopIteration as done:
                return cast(_T, done.value)
            value, error = None, None
            try:
                value = step()
                if inspect.isawaitable(value):  # a plain call (next() on a list) is not
                    self._waiting = True
                    try:
                        value = await value
                    finally:
                        self._waiting = False
            except asyncio.CancelledError as exc:
                error = exc
                if self._interrupted:  # the cancel was interrupt()'s, not the caller's
                    cast(asyncio.Task[_T], asyncio.current_task()).uncancel()
                    self._interrupted, error = False, KeyboardInterrupt()
            except BaseException as exc:
                error = exc

    @contextlib.contextmanager
    def on_stop_signals(self, plan: Callable[[], None]) -> Iterator[None]:
        """Within the block, SIGINT and SIGTERM call ``plan()`` in the loop."""
        loop = asyncio.get_running_loop()
        try:
            for signum in STOP_SIGNALS:
                loop.add_signal_handler(signum, plan)
        except NotImplementedError:  # pragma: no cover - Windows: Ctrl-C ends the run
            pass
        try:
            yield
        finally:
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)

    def interrupted_by_stop_signals(self) -> contextlib.AbstractContextManager[None]:
        """Within the block, SIGINT and SIGTERM make the step waiting raise KeyboardInterrupt."""
        task = asyncio.current_task()
        assert task is not None

        def interrupt() -> None:
            self._interrupted = True
            if self._waiting:
                task.cancel()  # else the driver raises it before the next step

        stop = _StopPlan()
        stop.arm(interrupt, interrupt)
        return self.on_stop_signals(stop)

    def stdin_lines(self) -> Step:
        """A step returning stdin's next line, or None at its end.

        A thread reads stdin, so that the loop never blocks on it (and takes a signal at
        once); a daemon thread reading with os.read, so that it never holds up the exit.
        """
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[bytes | None] = asyncio.Queue()

        def deliver(line: bytes | None) -> None:
            try:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            except RuntimeError:
                pass  # the loop is closed: the client is exiting

        def read() -> None:
            pending = b""
            try:
                while chunk := os.read(sys.stdin.fileno(), CHUNK):
                    *complete, pending = (pending + chunk).split(b"\n")
                    for line in complete:
                        deliver(line + b"\n")
            except OSError:
                pass  # an unreadable stdin ends the input too
            if pending:
                deliver(pending)  # a last line without a newline goes as it is
            deliver(None)

        threading.Thread(target=read, name="asocket stdin", daemon=True).start()
        return lines.get


class _SyncFace:
    """The sync face: a plan runs in the main thread, every step blocking."""

    module: Any = asocket.sync
    echo: Any = staticmethod(echo_sync)

    def run(self, plan: Plan[_T]) -> _T:
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = plan.send(value) if error is None else plan.throw(error)
            except StopIteration as done:
                return cast(_T, done.value)
            try:
                value, error = step(), None
            except BaseException as exc:
                value, error = None, exc

    @contextlib.contextmanager
    def on_stop_signals(self, plan: Callable[[], None]) -> Iterator[None]:
        """Within the block, SIGINT and SIGTERM call ``plan()`` in a thread of its own.

        The signals are blocked, in this thread and in every thread started within the
        block (they inherit the mask), and taken by a thread with ``sigwait``: no signal
        handler interrupts a thread that may hold a lock ``plan`` needs.
        """
        if not hasattr(signal, "sigwait"):  # pragma: no cover - Windows: Ctrl-C ends the run
            yield
            return
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

        def take_signals() -> None:
            while True:
                signal.sigwait(STOP_SIGNALS)
                plan()

        try:
            threading.Thread(target=take_signals, name="asocket stop signal", daemon=True).start()
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    @contextlib.contextmanager
    def interrupted_by_stop_signals(self) -> Iterator[None]:
        """Within the block, SIGINT and SIGTERM raise KeyboardInterrupt in the main thread
        (and so in the step waiting there)."""
        previous = {
            signum: signal.signal(signum, signal.default_int_handler) for signum in STOP_SIGNALS
        }
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def stdin_lines(self) -> Step:
        """A step returning stdin's next line, or None at its end."""
        return partial(next, iter(sys.stdin.buffer.readline, b""), None)


_Face = _AsyncFace | _SyncFace
