"""Overload, checked from outside: a server process under a low descriptor limit.

``tests/overload_server.py`` serves echo with ``serve_tcp`` after lowering its soft
``RLIMIT_NOFILE``. This test, a plain stdlib client, opens a few long-lived connections,
then floods the server with more connections than it has descriptors for, and checks:
the established connections still echo, the listener stays open, the server does not
busy-loop (its CPU time over a flooded second), it recovers once the flood ends, and its
log shows the ``accept()`` failure once per episode, its end, and no tracebacks.

Run by hand for bigger figures:
``python tests/test_overload.py asyncio --nofile 256 --flood 2000``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import resource
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asocket._serve_policy import QUIET  # accepts succeeding this long end a failure episode

SERVER = Path(__file__).with_name("overload_server.py")
HOST = "127.0.0.1"
ESTABLISHED = 5  # long-lived connections opened before the flood

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc; RLIMIT_NOFILE semantics"
)


def raise_own_nofile(needed: int) -> None:
    """This process opens the flood: raise its soft descriptor limit if it is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@contextlib.contextmanager
def server_process(log: Path, face: str, *options: str) -> Iterator[tuple[int, int]]:
    """Start the server; yield ``(pid, port)``; kill it (by its pid) at the end."""
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(SERVER), face, *options], stdout=subprocess.PIPE, stderr=err
        )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        line = proc.stdout.readline() if ready else b""
        assert line.strip().isdigit(), f"server did not start: {log.read_text()[-2000:]}"
        yield proc.pid, int(line)
        assert proc.poll() is None, f"server died: {log.read_text()[-2000:]}"
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid``, all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def listening(port: int) -> bool:
    """Whether a TCP socket listens on 127.0.0.1:``port`` (from /proc/net/tcp)."""
    local = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        return any(
            line.split()[1] == local and line.split()[3] == "0A" for line in f.readlines()[1:]
        )


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection((HOST, port), timeout=timeout)


def echoes(sock: socket.socket, payload: bytes) -> bool:
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        data = sock.recv(4096)
        if not data:
            return False
        got += data
    return got == payload


def open_flood(port: int, n: int) -> list[socket.socket]:
    """``n`` non-blocking connections, left to complete (or not) on their own."""
    flood = []
    for _ in range(n):
        sock = socket.socket()
        sock.setblocking(False)
        err = sock.connect_ex((HOST, port))
        assert err in (0, errno.EINPROGRESS), os.strerror(err)
        flood.append(sock)
    return flood


def poll_ready(socks: list[socket.socket], event: int, timeout: float) -> list[socket.socket]:
    poller = select.poll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        poller.register(fd, event)
    return [by_fd[fd] for fd, ev in poller.poll(timeout * 1000) if ev & event]


def count_echoed(socks: list[socket.socket], deadline: float) -> int:
    """How many of ``socks`` (each sent b"x") got their byte back before ``deadline``."""
    waiting, echoed = list(socks), 0
    while waiting and time.monotonic() < deadline:
        for sock in poll_ready(waiting, select.POLLIN, min(0.2, deadline - time.monotonic())):
            waiting.remove(sock)
            with contextlib.suppress(OSError):
                echoed += sock.recv(1) == b"x"
    return echoed


def serves(port: int, deadline: float) -> float:
    """Seconds until a new connection echoes (retrying until ``deadline``), or ``inf``."""
    t0 = time.monotonic()
    while time.monotonic() < deadline:
        try:
            with connect(port, timeout=min(2.0, max(0.1, deadline - time.monotonic()))) as sock:
                if echoes(sock, b"recovered"):
                    return time.monotonic() - t0
        except OSError:
            time.sleep(0.05)
    return float("inf")


def wait_for_log(log: Path, text: str, deadline: float) -> str:
    while True:
        content = log.read_text(errors="replace")
        if text in content or time.monotonic() >= deadline:
            return content
        time.sleep(0.05)


def overload(log: Path, face: str, nofile: int, flood_size: int, *options: str) -> dict[str, Any]:
    """Run the scenario; assert what must hold; return the figures."""
    raise_own_nofile(flood_size + 256)
    figures: dict[str, Any] = {"face": face, "nofile": nofile, "flood": flood_size}
    with server_process(log, face, "--nofile", str(nofile), *options) as (pid, port):
        established = [connect(port) for _ in range(ESTABLISHED)]
        flood: list[socket.socket] = []
        try:
            assert all(echoes(s, b"before") for s in established)
            flood = open_flood(port, flood_size)
            time.sleep(0.5)  # the server accepts what it can, then runs out of descriptors
            connected = poll_ready(flood, select.POLLOUT, 0.5)
            for sock in connected:
                with contextlib.suppress(OSError):
                    sock.send(b"x")
            figures["flood connected (backlog or accepted)"] = len(connected)

            # Flooded: the established connections are served, without a busy loop.
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            rounds = 0
            while time.monotonic() - t0 < 1.0:
                assert all(echoes(s, b"during") for s in established)
                rounds += len(established)
                time.sleep(0.05)
            cpu, wall = cpu_seconds(pid) - cpu0, time.monotonic() - t0
            figures["server descriptors open while flooded"] = len(os.listdir(f"/proc/{pid}/fd"))
            figures["echoes on established connections while flooded"] = rounds
            figures["server CPU s per wall s while flooded"] = round(cpu / wall, 3)
            assert cpu < 0.5 * wall, f"{cpu:.2f} s CPU in {wall:.2f} s: a busy loop"
            # Those accepted echo at once; those still in the backlog never do.
            figures["flood connections served"] = served = count_echoed(
                connected, time.monotonic() + 0.5
            )
            assert served >= 1
            assert listening(port), "the listener was closed"
            assert all(echoes(s, b"still") for s in established)
        finally:
            for sock in flood:
                sock.close()
            t_end = time.monotonic()

        # The flood is over: new connections are served again.
        recovery = serves(port, t_end + 15)
        figures["recovery s (flood closed -> new connection echoes)"] = round(
            time.monotonic() - t_end, 3
        )
        assert recovery != float("inf"), "no recovery within 15 s"
        assert all(echoes(s, b"after") for s in established)
        for sock in established:
            sock.close()
        time.sleep(QUIET + 0.3)  # accepts succeeding this long end the failure episode...
        assert serves(port, time.monotonic() + 10) != float("inf")
        text = wait_for_log(log, "works again", time.monotonic() + 5)  # ...and it is logged
    failures = text.count("failed (out of resources)")
    figures["accept() failures logged"] = failures
    figures["recoveries logged"] = text.count("works again")
    figures["tracebacks logged"] = text.count("Traceback")
    assert 1 <= failures <= 3, text[-3000:]
    assert "works again" in text, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    return figures


@pytest.mark.parametrize(
    ("face", "options"),
    [
        ("asyncio", ()),
        ("uvloop", ()),
        ("threads", ()),
        # EMFILE while the cap still has room: the same back-off, no spin
        ("asyncio", ("--max-connections", "1000")),
    ],
    ids=["asyncio", "uvloop", "threads", "asyncio-max1000"],
)
def test_flood_under_low_nofile(tmp_path: Path, face: str, options: tuple[str, ...]) -> None:
    if face == "uvloop":
        pytest.importorskip("uvloop")
    overload(tmp_path / "server.log", face, 64, 200, *options)


@pytest.mark.parametrize("face", ["asyncio", "threads"])
def test_max_connections_from_outside(tmp_path: Path, face: str) -> None:
    with server_process(tmp_path / "server.log", face, "--max-connections", "3") as (_, port):
        first = [connect(port) for _ in range(3)]
        try:
            assert all(echoes(s, b"in") for s in first)
            with connect(port) as fourth:  # completes in the backlog, not accepted
                fourth.sendall(b"4")
                assert not select.select([fourth], [], [], 0.5)[0], "served beyond the cap"
                first.pop().close()
                assert select.select([fourth], [], [], 5)[0], "not served once a slot freed"
                assert fourth.recv(10) == b"4"
        finally:
            for sock in first:
                sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Flood an asocket server by hand.")
    parser.add_argument("face", choices=["asyncio", "uvloop", "threads"])
    parser.add_argument("--nofile", type=int, default=256)
    parser.add_argument("--flood", type=int, default=2000)
    parser.add_argument("--max-connections")
    parser.add_argument("--backlog")
    parser.add_argument("--log", default=None, help="server log file (default: a temp file)")
    args = parser.parse_args()
    options: tuple[str, ...] = ()
    if args.max_connections:
        options += ("--max-connections", args.max_connections)
    if args.backlog:
        options += ("--backlog", args.backlog)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(args.log) if args.log else Path(tmp) / "server.log"
        for name, value in overload(log, args.face, args.nofile, args.flood, *options).items():
            print(f"{name}: {value}")


if __name__ == "__main__":
    main()
