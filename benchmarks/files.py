"""Buffered files on the async face, side by side with asyncio's StreamReader.

    python benchmarks/files.py                 # full run (about a minute)
    python benchmarks/files.py --quick         # smaller counts, one round
    python benchmarks/files.py --loops asyncio

Each row reads one stream over a loopback TCP connection, on a fresh loop of
the given kind; a thread with a blocking stdlib socket sends the prebuilt
stream with one ``sendall`` and then shuts its side down, so the reader (the
measured side) is the bottleneck. Rows:

* ``lines``: 1,000,000 short lines, ``await f.readline()`` on
  ``sock.makefile("rb")`` vs ``await reader.readline()`` on
  ``asyncio.open_connection(sock=...)``'s StreamReader;
* ``frames``: 100,000 frames of a 4-byte length and 0-199 payload bytes,
  ``readexactly(4)`` then ``readexactly(n)`` on both;
* ``bulk``: 512 MiB, ``await f.read(65536)`` vs plain ``await
  sock.recv_into(buf)`` (a reused 64 KiB buffer) on the same kind of asocket
  socket; ``f.readinto(buf)`` and StreamReader ``read(65536)`` for reference.

The figure is the reader's CPU time (user + system, ``time.process_time``:
on a shared machine, time spent descheduled is not the reader's), the best of
``--rounds`` rounds, variants alternating within a round. The ratios are the
baseline's time over asocket's (higher is faster; the baseline is the second
variant of the row), in CPU time, then in wall-clock time.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asocket

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.SelectorEventLoop}
if uvloop is not None:
    LOOPS["uvloop"] = uvloop.new_event_loop


def lines_stream(count: int) -> bytes:
    return b"".join(b"line %07d\n" % i for i in range(count))


def frames_stream(count: int) -> bytes:
    rng = random.Random(1)
    payload = bytes(range(200))
    out = bytearray()
    for _ in range(count):
        n = rng.randrange(200)
        out += n.to_bytes(4, "big") + payload[:n]
    return bytes(out)


_SENDER = """
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as s, open(sys.argv[2], "rb") as f:
    s.sendfile(f)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
"""


class Feed:
    """A loopback connection whose far end a child process feeds with ``data``
    (``sendfile`` from a temporary file), then shuts. A process, not a thread:
    the sender must not compete with the reader for the GIL."""

    def __init__(self, path: str) -> None:
        with socket.create_server(("127.0.0.1", 0)) as lst:
            port = lst.getsockname()[1]
            self.child = subprocess.Popen([sys.executable, "-c", _SENDER, str(port), path])
            lst.settimeout(30)
            self.client, _ = lst.accept()
        self.client.settimeout(None)

    def close(self) -> None:
        self.client.close()
        self.child.wait(30)


# -- readers: each returns (items, bytes) read ------------------------------------


async def asocket_lines(sock: socket.socket) -> int:
    async with asocket.from_socket(sock) as s, s.makefile("rb") as f:
        n = 0
        readline = f.readline
        while await readline():
            n += 1
        return n


async def stream_lines(sock: socket.socket) -> int:
    reader, writer = await asyncio.open_connection(sock=sock)
    n = 0
    readline = reader.readline
    while await readline():
        n += 1
    writer.close()
    return n


async def asocket_frames(sock: socket.socket) -> int:
    async with asocket.from_socket(sock) as s, s.makefile("rb") as f:
        n = 0
        readexactly = f.readexactly
        try:
            while True:
                size = int.from_bytes(await readexactly(4), "big")
                await readexactly(size)
                n += 1
        except asocket.IncompleteReadError:
            return n


async def stream_frames(sock: socket.socket) -> int:
    reader, writer = await asyncio.open_connection(sock=sock)
    n = 0
    readexactly = reader.readexactly
    try:
        while True:
            size = int.from_bytes(await readexactly(4), "big")
            await readexactly(size)
            n += 1
    except asyncio.IncompleteReadError:
        writer.close()
        return n


async def asocket_read(sock: socket.socket) -> int:
    async with asocket.from_socket(sock) as s, s.makefile("rb") as f:
        total = 0
        read = f.read
        while data := await read(65536):
            total += len(data)
        return total


async def asocket_readinto(sock: socket.socket) -> int:
    async with asocket.from_socket(sock) as s, s.makefile("rb") as f:
        total = 0
        buf = bytearray(65536)
        readinto = f.readinto
        while n := await readinto(buf):
            total += n
        return total


async def asocket_recv_into(sock: socket.socket) -> int:
    with asocket.from_socket(sock) as s:
        total = 0
        buf = bytearray(65536)
        recv_into = s.recv_into
        while n := await recv_into(buf):
            total += n
        return total


async def stream_read(sock: socket.socket) -> int:
    reader, writer = await asyncio.open_connection(sock=sock)
    total = 0
    read = reader.read
    while data := await read(65536):
        total += len(data)
    writer.close()
    return total


Reader = Callable[[socket.socket], Awaitable[int]]


def measure(loop: str, reader: Reader, path: str, expect: int) -> tuple[float, float]:
    """Seconds (CPU time of this process, wall-clock time) to read the file at ``path``
    to its end with ``reader`` on a fresh ``loop``."""
    feed = Feed(path)

    async def main() -> tuple[float, float]:
        c0 = time.process_time()
        t0 = time.perf_counter()
        got = await reader(feed.client)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - c0
        if got != expect:
            raise AssertionError(f"{reader.__name__}: {got} != {expect}")
        return cpu, elapsed

    gc.collect()
    try:
        with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
            return runner.run(main())
    finally:
        feed.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the data, one round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loops", default=",".join(LOOPS))
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    rounds = 1 if args.quick else args.rounds
    n_lines, n_frames = 1_000_000 // scale, 100_000 // scale
    bulk = (512 << 20) // scale
    lines, frames = lines_stream(n_lines), frames_stream(n_frames)
    blob = b"\xa5" * bulk
    rows: list[tuple[str, str, list[tuple[str, Reader]], bytes, int, str]] = [
        (
            f"lines ({n_lines:,} readline)",
            "us/line",
            [("asocket", asocket_lines), ("StreamReader", stream_lines)],
            lines,
            n_lines,
            "",
        ),
        (
            f"frames ({n_frames:,} readexactly x2)",
            "us/frame",
            [("asocket", asocket_frames), ("StreamReader", stream_frames)],
            frames,
            n_frames,
            "",
        ),
        (
            f"bulk ({bulk >> 20} MiB read(65536))",
            "MB/s",
            [
                ("asocket", asocket_read),
                ("recv_into", asocket_recv_into),
                ("readinto", asocket_readinto),
                ("StreamReader", stream_read),
            ],
            blob,
            bulk,
            "bulk",
        ),
    ]
    paths = {}
    tmp = tempfile.TemporaryDirectory()
    for title, _unit, _variants, data, _expect, _kind in rows:
        paths[title] = str(Path(tmp.name) / f"{len(paths)}.bin")
        Path(paths[title]).write_bytes(data)
    print(f"python {sys.version.split()[0]}, asocket {asocket.__version__}, rounds {rounds}")
    head = f"{'row':34} {'loop':8} {'variant':13} {'figure':>10} {'(CPU)':8}"
    print(f"{head} {'ratio':>7} {'(wall)':>7}")
    for loop in args.loops.split(","):
        for title, unit, variants, data, expect, kind in rows:
            best: dict[str, float] = {}
            wall: dict[str, float] = {}
            for _ in range(rounds):
                for name, reader in variants:
                    cpu, t = measure(loop, reader, paths[title], expect)
                    best[name] = min(best.get(name, cpu), cpu)
                    wall[name] = min(wall.get(name, t), t)
            base = variants[1][0]
            for name, _reader in variants:
                t = best[name]
                if kind == "bulk":
                    figure = f"{len(data) / t / 1e6:10.0f}"
                else:
                    figure = f"{t / expect * 1e6:10.3f}"
                ratio = (
                    f"{best[base] / t:6.2f}x {wall[base] / wall[name]:6.2f}x"
                    if name == "asocket"
                    else ""
                )
                print(f"{title:34} {loop:8} {name:13} {figure} {unit:8} {ratio}", flush=True)
    tmp.cleanup()


if __name__ == "__main__":
    main()
