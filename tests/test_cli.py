"""``python -m asocket``: every subcommand, run as a subprocess, on loopback only.

Servers start with ``--port 0``; the test reads their ``listening on`` line
with a bounded wait. Every subprocess is ended by its PID in a ``finally``
(terminate, wait, kill). Waits are bounds, never assertions on timing.
"""

from __future__ import annotations

import errno
import importlib.metadata
import os
import pty
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest

import asocket
from asocket._cli import Plan, _AsyncFace, _Face, _StopPlan, _SyncFace, main

WAIT = 20.0  # the bound on any one wait; a healthy run takes a fraction of it
PROG = b"python -m asocket"

try:
    import uvloop  # noqa: F401

    HAS_UVLOOP = True
except ImportError:  # pragma: no cover - Windows
    HAS_UVLOOP = False

FACES = {"async": [], "uvloop": ["--uvloop"], "sync": ["--sync"]}
face_param = pytest.mark.parametrize(
    "face",
    [
        "async",
        pytest.param("uvloop", marks=pytest.mark.skipif(not HAS_UVLOOP, reason="no uvloop")),
        "sync",
    ],
)
protocol_param = pytest.mark.parametrize("protocol", ["tcp", "udp", "unix"])


def command(*args: str) -> list[str]:
    """``python -m asocket ARGS``, any warning an error (so an unclosed socket shows)."""
    return [sys.executable, "-W", "error", "-m", "asocket", *args]


@contextmanager
def spawn(
    *args: str,
    stdin: int = subprocess.DEVNULL,
    new_session: bool = False,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m asocket ARGS`` with its output piped; ended by PID on the way out.

    With ``new_session``, it leads a process group of its own, as a terminal's
    foreground job does: ``os.killpg(proc.pid, SIGINT)`` is a Ctrl-C.
    """
    proc = subprocess.Popen(
        command(*args),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
        start_new_session=new_session,
        env=env,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(WAIT)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def run(
    *args: str, stdin: bytes = b"", env: dict[str, str] | None = None
) -> tuple[int, bytes, bytes]:
    """Run ``python -m asocket ARGS`` to its end: (exit status, stdout, stderr)."""
    with spawn(*args, stdin=subprocess.PIPE, env=env) as proc:
        out, err = proc.communicate(stdin, timeout=WAIT)
    return proc.returncode, out, err


def read_line(proc: subprocess.Popen[bytes]) -> bytes:
    """The first line ``proc`` writes to stdout, waiting at most ``WAIT`` seconds."""
    assert proc.stdout is not None
    data = b""
    deadline = time.monotonic() + WAIT
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in data:
            if not selector.select(max(deadline - time.monotonic(), 0)):
                pytest.fail(f"no line from {proc.args!r} in {WAIT} s; got {data!r}")
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                _, err = proc.communicate(timeout=WAIT)
                pytest.fail(f"{proc.args!r} exited {proc.returncode}: {err.decode()}")
            data += chunk
    return data.partition(b"\n")[0]


@contextmanager
def echo_server(*args: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """An ``echo-server ARGS`` and the address it listens on, once it does."""
    with spawn("echo-server", *args) as proc:
        line = read_line(proc)
        assert line.startswith(b"listening on "), line
        yield proc, line.removeprefix(b"listening on ").decode()


def waiting(grace: str) -> str:
    """What ``echo-server`` says on stderr as it waits out its grace period (a pattern)."""
    return (
        rf"python -m asocket echo-server: stopped accepting; waiting up to {grace} s for "
        r"\d+ open connection\(s\) to finish \(SIGINT or SIGTERM again: close them now\)\n"
    )


def stop(proc: subprocess.Popen[bytes], signum: int = signal.SIGTERM, says: str = "") -> None:
    """Send ``signum`` to the server: it must exit 0, with only ``says`` (a pattern) on
    stderr. By default, nothing or the waiting line: a client that has just closed its
    connection may still have its handler running when the signal comes."""
    says = says or f"({waiting('5')})?"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err
    assert re.fullmatch(says, err.decode()), err


def port_of(address: str) -> int:
    return int(address.rpartition(":")[2])


def server_args(protocol: str, face: str, tmp_path: Path) -> list[str]:
    where = {"tcp": [], "udp": ["--udp"], "unix": ["--unix", str(tmp_path / "echo.sock")]}
    return [*where[protocol], *FACES[face]]


def client_args(protocol: str, face: str, address: str) -> list[str]:
    if protocol == "unix":
        return ["--unix", address, *FACES[face]]
    udp = ["--udp"] if protocol == "udp" else []
    return [*udp, "--port", str(port_of(address)), *FACES[face]]


def raw_stream_echo(family: int, address: Any) -> None:
    """A stdlib client: every byte value, 256 KiB, sent while reading; the echo is exact."""
    payload = bytes(range(256)) * 1024
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(WAIT)
        sock.connect(address)

        def send() -> None:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send)
        sender.start()
        echoed = bytearray()
        while data := sock.recv(65536):  # to EOF: the server closes after ours
            echoed += data
        sender.join(WAIT)
    assert echoed == payload


def raw_datagram_echo(address: tuple[str, int]) -> None:
    """A stdlib client: each datagram comes back whole, from the server's address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(WAIT)
        for datagram in [b"", b"\x00\xff\r\n", bytes(range(256)), b"x" * 60000]:
            sock.sendto(datagram, address)
            assert sock.recvfrom(65536) == (datagram, address)


def raw_echo(protocol: str, address: str) -> None:
    if protocol == "udp":
        raw_datagram_echo(("127.0.0.1", port_of(address)))
    elif protocol == "tcp":
        raw_stream_echo(socket.AF_INET, ("127.0.0.1", port_of(address)))
    else:
        raw_stream_echo(socket.AF_UNIX, address)


def assert_one_line_error(status: int, out: bytes, err: bytes, command: str = "echo-client") -> str:
    assert (status, out) == (1, b""), err
    assert err.startswith(PROG + f" {command}: error: ".encode()), err
    assert err.count(b"\n") == 1 and err.endswith(b"\n"), err
    return err.decode()


# -- help, version, demo ------------------------------------------------------------------


@pytest.mark.parametrize("args", [[], ["demo"], ["echo-server"], ["echo-client"]])
def test_help(args: list[str]) -> None:
    status, out, err = run(*args, "--help")
    assert (status, err) == (0, b"")
    assert out.startswith(b"usage: " + b" ".join([PROG, *map(str.encode, args)]))


def test_version() -> None:
    status, out, err = run("--version")
    assert (status, out, err) == (0, f"asocket {asocket.__version__}\n".encode(), b"")
    assert asocket.__version__ == importlib.metadata.version("asocket")


@pytest.mark.parametrize(
    "args",
    [
        [],
        pytest.param(["--uvloop"], marks=pytest.mark.skipif(not HAS_UVLOOP, reason="no uvloop")),
        pytest.param(
            ["demo", "--uvloop"], marks=pytest.mark.skipif(not HAS_UVLOOP, reason="no uvloop")
        ),
    ],
)
def test_demo(args: list[str]) -> None:
    status, out, err = run(*args)
    assert (status, err) == (0, b"")
    assert out.endswith(b"done: both faces talked to one server\n")
    assert b"async client got b'hello from the async face'" in out
    assert b"sync  client got b'hello from the sync face'" in out


# -- echo-server and echo-client ------------------------------------------------------------


@face_param
@protocol_param
def test_echo(protocol: str, face: str, tmp_path: Path) -> None:
    messages = ["hello", "two words", "h\u00e9llo w\u00f6rld", "", "-not-an-option"]
    lines = b"line one\nline two\r\n\x00\xff bytes\n" + b"x" * 200_000 + b"\nlast, no newline"
    if protocol == "udp":
        lines = b"datagram one\n\x00\xff bytes\r\nlast, no newline"
    with echo_server(*server_args(protocol, face, tmp_path)) as (server, address):
        target = client_args(protocol, face, address)

        status, out, err = run("echo-client", *target, "--", *messages)
        assert (status, err) == (0, b"")
        assert out == b"".join(os.fsencode(message) + b"\n" for message in messages)

        status, out, err = run("echo-client", *target, stdin=lines)
        assert (status, err) == (0, b"")
        assert out == lines

        raw_echo(protocol, address)
        stop(server)
    assert not (tmp_path / "echo.sock").exists()


@face_param
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_server_with_open_connection(face: str, signum: int) -> None:
    with (
        echo_server("--grace-period", "0.2", *FACES[face]) as (server, address),
        socket.create_connection(("127.0.0.1", port_of(address)), timeout=WAIT) as sock,
    ):
        sock.sendall(b"ping")
        assert sock.recv(16) == b"ping"
        stop(server, signum, says=waiting("0.2"))
        assert sock.recv(16) == b""  # the server closed it when the grace period ended


def refused_soon(port: int) -> None:
    """Wait (bounded) until connections to 127.0.0.1:port are refused."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=WAIT).close()
        except ConnectionRefusedError:
            return
        except ConnectionResetError:
            pass  # queued as the listener closed
        assert time.monotonic() < deadline, "still accepting"
        time.sleep(0.02)


@face_param
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_second_signal_cuts_the_grace_period_short(face: str, signum: int) -> None:
    with (
        echo_server("--grace-period", "60", *FACES[face]) as (server, address),
        socket.create_connection(("127.0.0.1", port_of(address)), timeout=WAIT) as sock,
    ):
        sock.sendall(b"ping")
        assert sock.recv(16) == b"ping"
        server.send_signal(signum)
        refused_soon(port_of(address))  # stopped accepting: in the 60 s grace period
        sock.sendall(b"still served")
        assert sock.recv(16) == b"still served"
        t0 = time.monotonic()
        stop(server, signum, says=waiting("60"))  # exit 0, nothing else on stderr
        assert time.monotonic() - t0 < WAIT / 2
        assert sock.recv(16) == b""  # closed at the second signal


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
@pytest.mark.parametrize("face", ["async", "sync"])
def test_echo_on_ipv6_loopback(face: str) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no ::1")
    with echo_server("--host", "::1", *FACES[face]) as (server, address):
        assert address.startswith("[::1]:")
        port = str(port_of(address))
        status, out, err = run("echo-client", "--host", "::1", "--port", port, *FACES[face], "v6")
        assert (status, out, err) == (0, b"v6\n", b"")
        stop(server)


@pytest.mark.parametrize("face", ["async", "sync"])
def test_max_connections(face: str) -> None:
    with echo_server("--max-connections", "1", *FACES[face]) as (server, address):
        first = socket.create_connection(("127.0.0.1", port_of(address)), timeout=WAIT)
        second = socket.create_connection(("127.0.0.1", port_of(address)), timeout=WAIT)
        with first, second:
            first.sendall(b"one")
            assert first.recv(16) == b"one"
            second.sendall(b"two")
            second.settimeout(0.3)
            with pytest.raises(TimeoutError):
                second.recv(16)  # waits in the backlog while the first is served
            first.close()
            second.settimeout(WAIT)
            assert second.recv(16) == b"two"
        stop(server)


@pytest.mark.skipif(shutil.which("socat") is None, reason="no socat")
@pytest.mark.parametrize("protocol", ["tcp", "unix"])
def test_echo_server_answers_socat(protocol: str, tmp_path: Path) -> None:
    payload = bytes(range(256)) * 64
    with echo_server(*server_args(protocol, "async", tmp_path)) as (server, address):
        peer = f"TCP:127.0.0.1:{port_of(address)}" if protocol == "tcp" else f"UNIX:{address}"
        socat = subprocess.run(
            ["socat", "-", peer], input=payload, capture_output=True, timeout=WAIT
        )
        assert (socat.returncode, socat.stderr) == (0, b"")
        assert socat.stdout == payload
        stop(server)


# -- echo-client errors -----------------------------------------------------------------------


@contextmanager
def unreachable(protocol: str, tmp_path: Path) -> Iterator[list[str]]:
    """``echo-client`` options naming a loopback address where nobody listens."""
    if protocol == "unix":
        yield ["--unix", str(tmp_path / "nobody.sock")]
        return
    kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        if protocol == "tcp":
            yield ["--port", str(port)]  # bound, never listening: refused
            return
    yield ["--udp", "--port", str(port)]  # nothing bound now: refused by ICMP


@face_param
@protocol_param
def test_client_reports_unreachable_server_in_one_line(
    protocol: str, face: str, tmp_path: Path
) -> None:
    with unreachable(protocol, tmp_path) as target:
        status, out, err = run("echo-client", *target, "--timeout", "5", *FACES[face], "hi")
    message = assert_one_line_error(status, out, err)
    if protocol == "tcp":
        assert message.endswith(": Connection refused\n")
    elif protocol == "unix":
        assert message.endswith(f": {os.strerror(errno.ENOENT)}\n")


@pytest.mark.parametrize("face", ["async", "sync"])
def test_client_reports_timeout_in_one_line(face: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # connects, never answers
        port = silent.getsockname()[1]
        status, out, err = run(
            "echo-client", "--port", str(port), "--timeout", "0.3", *FACES[face], "hi"
        )
    message = assert_one_line_error(status, out, err)
    assert message.endswith(f"no echo from 127.0.0.1:{port}: timed out after 0.3 s\n")


def test_client_stops_quietly_when_stdout_closes() -> None:
    messages = [str(n) * 2000 for n in range(100)]  # 200 KB of echo: more than a pipe holds
    with echo_server() as (server, address):
        with spawn("echo-client", "--port", str(port_of(address)), *messages) as client:
            assert client.stdout is not None
            client.stdout.close()
            _, err = client.communicate(timeout=WAIT)
            assert (client.returncode, err) == (1, b"")
        stop(server)


@pytest.mark.parametrize("face", ["async", "sync"])
def test_server_reports_address_in_use_in_one_line(face: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        status, out, err = run("echo-server", "--port", str(port), *FACES[face])
    message = assert_one_line_error(status, out, err, "echo-server")
    # The address once: not again in the reason (serve_tcp's strerror names it too).
    reason = os.strerror(errno.EADDRINUSE)
    assert message.endswith(f"error: cannot listen on 127.0.0.1:{port}: {reason}\n"), message


# "bad host" (a space) is no host name: the resolver rejects it without asking any server.
@pytest.mark.parametrize("face", ["async", "sync"])
@pytest.mark.parametrize("command", ["echo-server", "echo-client"])
def test_bad_host_in_one_line(command: str, face: str) -> None:
    hi = ["hi"] if command == "echo-client" else []
    status, out, err = run(command, "--host", "bad host", "--port", "1", *FACES[face], *hi)
    message = assert_one_line_error(status, out, err, command)
    assert "bad host:1: " in message


@pytest.mark.parametrize("face", ["async", "sync"])
@pytest.mark.parametrize("command", ["echo-server", "echo-client"])
def test_missing_unix_directory_in_one_line(command: str, face: str, tmp_path: Path) -> None:
    path = tmp_path / "no such directory" / "echo.sock"
    hi = ["hi"] if command == "echo-client" else []
    status, out, err = run(command, "--unix", str(path), *FACES[face], *hi)
    message = assert_one_line_error(status, out, err, command)
    assert message.endswith(f" {path}: {os.strerror(errno.ENOENT)}\n"), message


@pytest.mark.parametrize("command", ["demo", "echo-server", "echo-client"])
def test_uvloop_missing_in_one_line(command: str, tmp_path: Path) -> None:
    (tmp_path / "uvloop.py").write_text("raise ImportError('No module named uvloop')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    port = [] if command == "demo" else ["--port", "1"]
    status, out, err = run(command, "--uvloop", *port, env=env)
    message = assert_one_line_error(status, out, err, command)
    assert message.endswith("error: --uvloop needs uvloop installed (pip install uvloop)\n")


# -- Ctrl-C at a terminal: SIGINT to the whole process group -----------------------------------


def ctrl_c(proc: subprocess.Popen[bytes]) -> tuple[int, bytes]:
    """Press Ctrl-C once: SIGINT to ``proc``'s process group; its exit status and stderr."""
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=WAIT)
    return proc.returncode, err


@face_param
def test_ctrl_c_stops_server(face: str) -> None:
    with spawn("echo-server", *FACES[face], new_session=True) as server:
        assert read_line(server).startswith(b"listening on ")
        assert ctrl_c(server) == (0, b"")


@face_param
@pytest.mark.parametrize("stdin", ["pipe", "terminal"])
def test_ctrl_c_stops_client_reading_stdin(face: str, stdin: str) -> None:
    """The first Ctrl-C ends a client waiting for its next line of input: status 0."""
    if stdin == "terminal":
        writer, reader = pty.openpty()  # a terminal's two ends: we type into the first
    else:
        reader, writer = os.pipe()
    with echo_server() as (server, address):
        try:
            with spawn(
                "echo-client", "--port", str(port_of(address)), *FACES[face],
                stdin=reader, new_session=True,
            ) as client:  # fmt: skip
                os.close(reader)
                reader = -1
                os.write(writer, b"typed\n")
                assert read_line(client) == b"typed"  # it answers; now it reads stdin again
                assert ctrl_c(client) == (0, b"")
        finally:
            for fd in (reader, writer):
                if fd >= 0:
                    os.close(fd)
        stop(server)


# -- usage errors (parsed in-process: nothing runs) ---------------------------------------------


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["echo-client", "hi"], "--port is required (or --unix PATH)"),
        (["echo-client", "--port", "65536"], "not a port number"),
        (["echo-server", "--port", "70000"], "not a port number (0-65535): '70000'"),
        (["echo-server", "--udp", "--port", "-1"], "not a port number"),
        (["echo-client", "--port", "1", "--timeout", "0"], "not a positive number of seconds"),
        (["echo-server", "--unix", "x.sock", "--port", "1"], "--unix PATH replaces --host"),
        (["echo-server", "--udp", "--unix", "x.sock"], "not allowed with argument"),
        (["echo-server", "--sync", "--uvloop"], "not allowed with argument"),
        (["echo-server", "--udp", "--max-connections", "2"], "applies to TCP and --unix"),
        (["echo-server", "--max-connections", "0"], "not a positive integer"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_usage_errors(args: list[str], complaint: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert complaint in capsys.readouterr().err


@face_param
def test_ctrl_c_stops_client_waiting_for_an_echo(face: str) -> None:
    """The first Ctrl-C ends a client waiting for a silent server's echo: status 0."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # connects, never answers
        port = str(silent.getsockname()[1])
        args = ["--port", port, "--timeout", str(WAIT), *FACES[face], "hello"]
        with spawn("echo-client", *args, new_session=True) as client:
            silent.settimeout(WAIT)
            conn, _ = silent.accept()
            with conn:
                assert conn.recv(16) == b"hello"  # sent: now it waits for the echo
                assert ctrl_c(client) == (0, b"")


# -- the pieces the two faces share (in-process) -----------------------------------------------


def test_stop_plan_acts_on_signals_that_came_before_it_was_armed() -> None:
    calls: list[str] = []
    plan = _StopPlan()
    plan()  # a signal while the server starts: nothing to stop yet
    plan()
    plan.arm(lambda: calls.append("stop"), lambda: calls.append("again"))
    assert calls == ["stop", "again"]
    plan()
    assert calls == ["stop", "again", "again"]


def ping_pong(face: _Face) -> Plan[list[object]]:
    """A plan: send, receive, then a failing call whose error the plan catches."""
    a, b = face.module.socketpair()
    with a, b:
        yield partial(a.sendall, b"ping")
        got = yield partial(b.recv, 16)
        b.close()
        try:
            yield partial(b.recv, 16)
        except OSError as exc:
            return [got, exc.errno]
    raise AssertionError("unreachable")


@pytest.mark.parametrize("face", ["async", "sync"])
def test_both_drivers_run_one_plan(face: str) -> None:
    runner: _Face = _AsyncFace(use_uvloop=False) if face == "async" else _SyncFace()
    assert runner.run(ping_pong(runner)) == [b"ping", errno.EBADF]
