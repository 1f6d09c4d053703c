"""asocket under trio and through httpx, side by side with the native peers, in one run.

    python benchmarks/bench_trio.py            # about a minute
    python benchmarks/bench_trio.py --quick    # about 15 seconds

(The file is not named ``trio.py``: run as a script, a ``benchmarks/trio.py``
would shadow the trio package for every benchmark in this directory.)

Rows, each measured in several rounds that alternate between the peers (so a
noisy machine slows both alike), the median reported, by the wall clock and
by this process's CPU time (the fairer figure on a machine shared with other
work), each with its ratio to the row's first peer:

1. **ping-pong under trio**: one byte sent and echoed between two tasks over a
   socketpair: ``trio.socket`` (``send``/``recv``) vs ``asocket`` (the same
   calls). Microseconds per round trip: lower is better. A third row, not a library,
   measures the floor: the shortest try/wait/retry loop on trio's primitives that
   keeps trio's checkpoint rule (no modes, deadlines, fan-out or close handling).
2. **100-connection echo under trio**: 100 client tasks each send a 64-byte
   message and wait for its echo, ``ECHO_ROUNDS`` times, to 100 server tasks
   on loopback TCP; both ends on ``trio.socket`` or both on ``asocket``
   (``sendall``/``recv``). Messages per second: higher is better.
3. **httpx GET on asyncio**: sequential ``GET`` of a 5-byte response, keep-alive,
   from a server in another process: ``httpx.AsyncClient`` with httpcore's
   default backend vs asocket's (``asocket.httpcore.AsyncBackend``), and the same
   through ``httpcore.AsyncConnectionPool`` alone. Requests per second.

Both libraries keep trio's rules: every call is a checkpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import trio

import asocket
import asocket.httpcore

PING = b"p"
MESSAGE = b"m" * 64


class Sample(NamedTuple):
    """One round's figure by the wall clock, and by this process's CPU time (the fairer
    one on a shared machine: another process's load does not count)."""

    wall: float
    cpu: float


# -- 1. ping-pong ---------------------------------------------------------------------


async def _pingpong(
    send: Callable[[bytes], Awaitable[Any]],
    recv: Callable[[int], Awaitable[bytes]],
    ssend: Callable[[bytes], Awaitable[Any]],
    srecv: Callable[[int], Awaitable[bytes]],
    n: int,
) -> Sample:
    async def server() -> None:
        while (await srecv(1)) == PING:
            await ssend(PING)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        for _ in range(200):  # warm-up
            await send(PING)
            await recv(1)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            await send(PING)
            await recv(1)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        await send(b"q")
    return Sample(wall / n * 1e6, cpu / n * 1e6)


def pingpong_trio(n: int) -> Sample:
    async def main() -> Sample:
        a, b = socket.socketpair()
        with trio.socket.from_stdlib_socket(a) as ta, trio.socket.from_stdlib_socket(b) as tb:
            return await _pingpong(ta.send, ta.recv, tb.send, tb.recv, n)

    return trio.run(main)


def pingpong_asocket(n: int) -> Sample:
    async def main() -> Sample:
        a, b = asocket.socketpair()
        with a, b:
            return await _pingpong(a.send, a.recv, b.send, b.recv, n)

    return trio.run(main)


def _bare(
    sock: socket.socket,
) -> tuple[Callable[[bytes], Awaitable[int]], Callable[[int], Awaitable[bytes]]]:
    """``send`` and ``recv`` as the shortest code on trio's primitives that keeps trio's
    checkpoint rule: try, on ``BlockingIOError`` wait and retry; no modes, no
    deadlines, one waiting task per socket and direction, no close handling. The
    floor any socket library on trio pays, not a library."""
    sock.setblocking(False)
    fd, raw_send, raw_recv = sock.fileno(), sock.send, sock.recv

    async def recv(n: int) -> bytes:
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            data = raw_recv(n)
        except BlockingIOError:
            while True:
                await trio.lowlevel.wait_readable(fd)
                try:
                    return raw_recv(n)
                except BlockingIOError:
                    pass
        await trio.lowlevel.cancel_shielded_checkpoint()
        return data

    async def send(data: bytes) -> int:
        await trio.lowlevel.checkpoint_if_cancelled()
        sent = raw_send(data)
        await trio.lowlevel.cancel_shielded_checkpoint()
        return sent

    return send, recv


def pingpong_bare(n: int) -> Sample:
    async def main() -> Sample:
        a, b = socket.socketpair()
        with a, b:
            return await _pingpong(*_bare(a), *_bare(b), n)

    return trio.run(main)


# -- 2. 100-connection echo -----------------------------------------------------------


async def _trio_sendall(sock: Any, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[await sock.send(view) :]


async def _echo(native: bool, conns: int, rounds: int) -> Sample:
    if native:
        lst = trio.socket.socket()
        await lst.bind(("127.0.0.1", 0))
    else:
        lst = asocket.socket()
        await lst.bind(("127.0.0.1", 0))
    lst.listen(conns)
    address = lst.getsockname()

    async def handler(sock: Any) -> None:
        with sock:
            while data := await sock.recv(65536):
                if native:
                    await _trio_sendall(sock, data)
                else:
                    await sock.sendall(data)

    async def serve(nursery: trio.Nursery) -> None:
        for _ in range(conns):
            sock, _ = await lst.accept()
            nursery.start_soon(handler, sock)

    async def client(sock: Any) -> None:
        for _ in range(rounds):
            if native:
                await _trio_sendall(sock, MESSAGE)
            else:
                await sock.sendall(MESSAGE)
            got = 0
            while got < len(MESSAGE):
                got += len(await sock.recv(65536))

    async with trio.open_nursery() as servers:
        servers.start_soon(serve, servers)
        clients = []
        for _ in range(conns):
            if native:
                sock = trio.socket.socket()
                await sock.connect(address)
            else:
                sock = await asocket.create_connection(address)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            clients.append(sock)
        t0, c0 = time.perf_counter(), time.process_time()
        async with trio.open_nursery() as nursery:
            for sock in clients:
                nursery.start_soon(client, sock)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        for sock in clients:
            sock.close()
    lst.close()
    return Sample(conns * rounds / wall, conns * rounds / cpu)


def echo_trio(conns: int, rounds: int) -> Sample:
    return trio.run(_echo, True, conns, rounds)


def echo_asocket(conns: int, rounds: int) -> Sample:
    return trio.run(_echo, False, conns, rounds)


# -- 3. httpx GET on asyncio ----------------------------------------------------------

SERVER = r"""
import asyncio, sys
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"
class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""
    def data_received(self, data):
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) != -1:
            self.buffer = self.buffer[end + 4:]
            self.transport.write(RESPONSE)
async def main():
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""


def _http_client(kind: str, backend: Any, port: int, n: int) -> Sample:
    import httpcore
    import httpx

    url = f"http://127.0.0.1:{port}/"

    async def main() -> Sample:
        if kind == "httpx":
            transport = httpx.AsyncHTTPTransport()
            if backend is not None:
                transport._pool = httpcore.AsyncConnectionPool(network_backend=backend)
            async with httpx.AsyncClient(transport=transport) as client:
                for _ in range(50):
                    await client.get(url)
                t0, c0 = time.perf_counter(), time.process_time()
                for _ in range(n):
                    await client.get(url)
                return Sample(n / (time.perf_counter() - t0), n / (time.process_time() - c0))
        async with httpcore.AsyncConnectionPool(network_backend=backend) as pool:
            for _ in range(50):
                await pool.request("GET", url)
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(n):
                await pool.request("GET", url)
            return Sample(n / (time.perf_counter() - t0), n / (time.process_time() - c0))

    return asyncio.run(main())


# -- the run --------------------------------------------------------------------------


def rounds(rows: dict[str, Callable[[], Sample]], count: int) -> dict[str, Sample]:
    """Each row ``count`` times, the rows alternating; the median of each clock."""
    samples: dict[str, list[Sample]] = {name: [] for name in rows}
    for _ in range(count):
        for name, fn in rows.items():
            samples[name].append(fn())
    return {
        name: Sample(
            statistics.median(s.wall for s in values), statistics.median(s.cpu for s in values)
        )
        for name, values in samples.items()
    }


def show(title: str, unit: str, results: dict[str, Sample], higher_is_better: bool) -> None:
    better = "higher" if higher_is_better else "lower"
    print(f"\n{title} ({unit}, median; {better} is better)")
    print(f"  {'':<46}{'wall':>9} {'ratio':>6} {'CPU':>9} {'ratio':>6}")
    names = list(results)
    base = results[names[0]]
    for name in names:
        value = results[name]
        cells = []
        for mine, theirs in ((value.wall, base.wall), (value.cpu, base.cpu)):
            ratio = mine / theirs if higher_is_better else theirs / mine
            cells.append(f"{mine:>9.1f} {ratio:>5.2f}x")
        print(f"  {name:<46}{' '.join(cells)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (about 15 s)")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tests
    args = parser.parse_args()
    count = 3 if args.quick else 7
    n_pp = 3000 if args.quick else 10000
    conns, echo_rounds = 100, (30 if args.quick else 100)
    n_http = 500 if args.quick else 2000
    if args.smoke:  # tiny sizes: the harness runs, the figures mean nothing
        count, n_pp, conns, echo_rounds, n_http = 1, 50, 5, 2, 10
    print(
        f"python {sys.version.split()[0]}, trio {trio.__version__}, "
        f"{os.cpu_count()} CPUs, {count} rounds per row"
    )

    results = rounds(
        {
            "trio.socket": lambda: pingpong_trio(n_pp),
            "asocket under trio": lambda: pingpong_asocket(n_pp),
            "(floor) bare try/wait loop, trio primitives": lambda: pingpong_bare(n_pp),
        },
        count,
    )
    show("1-byte ping-pong under trio", "us per round trip", results, False)

    results = rounds(
        {
            "trio.socket": lambda: echo_trio(conns, echo_rounds),
            "asocket under trio": lambda: echo_asocket(conns, echo_rounds),
        },
        count,
    )
    show(f"{conns}-connection echo under trio", "messages/s", results, True)

    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        backend = asocket.httpcore.AsyncBackend()
        results = rounds(
            {
                "httpx, httpcore's default backend": lambda: _http_client(
                    "httpx", None, port, n_http
                ),
                "httpx, asocket.httpcore.AsyncBackend": lambda: _http_client(
                    "httpx", backend, port, n_http
                ),
                "httpcore pool, default backend": lambda: _http_client(
                    "httpcore", None, port, n_http
                ),
                "httpcore pool, asocket.httpcore.AsyncBackend": lambda: _http_client(
                    "httpcore", backend, port, n_http
                ),
            },
            count,
        )
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(10)
    names = list(results)
    title = "GET of a 5-byte response on asyncio"
    show(f"httpx {title}", "requests/s", {k: results[k] for k in names[:2]}, True)
    show(f"httpcore {title}", "requests/s", {k: results[k] for k in names[2:]}, True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
