"""TLS benchmarks: the two TLS engines, then asocket's TLS faces against their peers.

    python benchmarks/tls.py                     # engines + faces, about a minute
    python benchmarks/tls.py --sections engines  # the engine comparison only
    python benchmarks/tls.py --quick             # fewer, shorter transfers

Every row talks to the same peer: a child process running the stdlib's blocking
``ssl.SSLSocket`` on loopback TCP (TLS 1.3, the default cipher), so the peer's
cost is the same for every row and only the side under test changes.

Section ``engines`` (the measurement behind asocket's choice of TLS engine),
both on asyncio's selector loop with ``add_reader``/``add_writer`` waits:

* (a) ``SSLSocket``: the stdlib's ``ssl.SSLSocket`` made non-blocking on the
  socket's own descriptor; ``SSLWantReadError``/``SSLWantWriteError`` make the
  task wait for readable/writable, then the call is retried (gevent, curio).
* (b) ``MemoryBIO``: ``ssl.MemoryBIO`` + ``SSLObject``; the task moves the
  ciphertext between the BIOs and the socket itself (trio, anyio, asyncio).

Minimal engines, one record per read: asocket began with (a) and now runs the
stdlib's ``SSLSocket`` with its SSL object on memory BIOs, (b)'s way, for full
duplex with TLS 1.3 key updates (docs/tls.md, "How it works").

Section ``faces`` (once asocket has TLS): bulk MB/s on each face against the
stdlib's blocking ``SSLSocket``, and 1-byte ping-pong on uvloop against
asyncio streams with ``ssl=`` on uvloop.

Figures: ``up`` = 64 MiB sent by the side under test (``sendall`` of 1 MiB
blocks), ``down`` = 64 MiB received (``recv_into`` a 256 KiB buffer), MB/s =
10^6 bytes per second, wall clock, median of the transfers; ``cpu`` = the test
process's CPU time per MiB (user + system; less sensitive to a busy machine than
the wall clock); ping-pong = µs per 1-byte round trip, median of batches, and
the test process's CPU time per round trip.
Only loopback is used; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

BLOCK = 1 << 20
RBUF = 256 << 10
WAIT = 30.0  # bound on every transfer's wait

# -- the peer (a child process, stdlib blocking SSLSocket) ---------------------------


def peer_main(certfile: str, keyfile: str) -> None:
    """Serve connections one at a time until stdin closes.

    Each connection starts with a command line: ``sink N`` (read N bytes, answer
    ``k``), ``source N`` (send N bytes), ``echo N`` (echo N single bytes).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certfile, keyfile)
    ctx.num_tickets = 0
    lst = socket.create_server(("127.0.0.1", 0))
    print(lst.getsockname()[1], flush=True)
    threading.Thread(target=_exit_on_stdin_eof, daemon=True).start()
    buf = bytearray(RBUF)
    while True:
        raw, _ = lst.accept()
        raw.settimeout(WAIT)
        try:
            with ctx.wrap_socket(raw, server_side=True) as s:
                line = b""
                while not line.endswith(b"\n"):
                    chunk = s.recv(1)
                    if not chunk:
                        break
                    line += chunk
                if not line:
                    continue
                cmd, n = line.split()
                count = int(n)
                if cmd == b"sink":
                    got = 0
                    while got < count:
                        k = s.recv_into(buf)
                        if not k:
                            break
                        got += k
                    s.sendall(b"k")
                elif cmd == b"source":
                    block = b"x" * BLOCK
                    sent = 0
                    while sent < count:
                        s.sendall(block[: count - sent])
                        sent += min(BLOCK, count - sent)
                    s.recv(1)  # wait for the other side's "done"
                elif cmd == b"echo":
                    for _ in range(count):
                        b = s.recv(1)
                        if not b:
                            break
                        s.sendall(b)
        except (OSError, ValueError) as exc:
            print(f"peer: {exc!r}", file=sys.stderr, flush=True)


def _exit_on_stdin_eof() -> None:
    sys.stdin.read()
    os._exit(0)


class Peer:
    """The child process, its port and the client context that trusts it."""

    def __init__(self) -> None:
        import trustme

        self._dir = tempfile.TemporaryDirectory()
        ca = trustme.CA()
        cert = ca.issue_cert("localhost", "127.0.0.1")
        certfile = os.path.join(self._dir.name, "cert.pem")
        keyfile = os.path.join(self._dir.name, "key.pem")
        cert.cert_chain_pems[0].write_to_path(certfile)
        for pem in cert.cert_chain_pems[1:]:
            pem.write_to_path(certfile, append=True)
        cert.private_key_pem.write_to_path(keyfile)
        self.client_ctx = ssl.create_default_context()
        ca.configure_trust(self.client_ctx)
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--peer", certfile, keyfile],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._dir.cleanup()


# -- the two engines, minimal, on asyncio with add_reader waits ----------------------


async def _wait(fd: int, write: bool) -> None:
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    add, remove = (
        (loop.add_writer, loop.remove_writer) if write else (loop.add_reader, loop.remove_reader)
    )
    add(fd, lambda: fut.done() or fut.set_result(None))
    try:
        await asyncio.wait_for(fut, WAIT)
    finally:
        remove(fd)


class EngineA:
    """(a) the stdlib's SSLSocket, non-blocking on the descriptor."""

    def __init__(self, ctx: ssl.SSLContext, raw: socket.socket) -> None:
        raw.setblocking(False)
        self.s = ctx.wrap_socket(raw, server_hostname="localhost", do_handshake_on_connect=False)
        self.fd = self.s.fileno()

    async def _retry(self, fn: Callable[..., Any], *args: Any) -> Any:
        while True:
            try:
                return fn(*args)
            except ssl.SSLWantReadError:
                await _wait(self.fd, False)
            except ssl.SSLWantWriteError:
                await _wait(self.fd, True)

    async def handshake(self) -> None:
        await self._retry(self.s.do_handshake)

    async def sendall(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            n = await self._retry(self.s.send, view)
            view = view[n:]

    async def recv_into(self, buf: bytearray) -> int:
        return int(await self._retry(self.s.recv_into, buf))

    async def recv(self, n: int) -> bytes:
        return bytes(await self._retry(self.s.recv, n))

    def close(self) -> None:
        self.s.close()


class EngineB:
    """(b) MemoryBIO + SSLObject; the task moves ciphertext itself."""

    def __init__(self, ctx: ssl.SSLContext, raw: socket.socket) -> None:
        raw.setblocking(False)
        self.raw = raw
        self.fd = raw.fileno()
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname="localhost")
        self.rbuf = bytearray(RBUF)

    async def _flush(self) -> None:
        while self.out.pending:
            view = memoryview(self.out.read())
            while view:
                try:
                    view = view[self.raw.send(view) :]
                except BlockingIOError:
                    await _wait(self.fd, True)

    async def _fill(self) -> None:
        while True:
            try:
                n = self.raw.recv_into(self.rbuf)
            except BlockingIOError:
                await _wait(self.fd, False)
                continue
            if n:
                self.inc.write(memoryview(self.rbuf)[:n])
            else:
                self.inc.write_eof()
            return

    async def _retry(self, fn: Callable[..., Any], *args: Any) -> Any:
        while True:
            try:
                result = fn(*args)
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
            else:
                await self._flush()
                return result

    async def handshake(self) -> None:
        await self._retry(self.obj.do_handshake)

    async def sendall(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            n = await self._retry(self.obj.write, view)
            view = view[n:]

    async def recv_into(self, buf: bytearray) -> int:
        # SSLObject.read(len, buffer)
        return int(await self._retry(self.obj.read, len(buf), buf))

    async def recv(self, n: int) -> bytes:
        return bytes(await self._retry(self.obj.read, n))

    def close(self) -> None:
        self.raw.close()


Engine = EngineA | EngineB


# -- the measurements ---------------------------------------------------------------


class Result:
    def __init__(self) -> None:
        self.up: list[float] = []
        self.down: list[float] = []
        self.up_cpu: list[float] = []
        self.down_cpu: list[float] = []
        self.rtt: list[float] = []
        self.rtt_cpu: list[float] = []

    def row(self, name: str) -> str:
        def med(xs: list[float], fmt: str) -> str:
            return format(statistics.median(xs), fmt) if xs else "-"

        return (
            f"| {name} | {med(self.up, '.0f')} | {med(self.down, '.0f')} | "
            f"{med(self.up_cpu, '.0f')} | {med(self.down_cpu, '.0f')} | {med(self.rtt, '.1f')} | "
            f"{med(self.rtt_cpu, '.1f')} |"
        )


HEADER = (
    "| row | up MB/s | down MB/s | up cpu µs/MiB | down cpu µs/MiB | ping-pong µs "
    "| ping-pong cpu µs |\n"
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def _cpu() -> float:
    return time.process_time()


async def engine_run(
    make: Callable[[ssl.SSLContext, socket.socket], Engine],
    peer: Peer,
    total: int,
    reps: int,
    rounds: int,
    result: Result,
) -> None:
    async def connect(cmd: str) -> Any:
        loop = asyncio.get_running_loop()
        raw = socket.socket()
        raw.setblocking(False)
        await loop.sock_connect(raw, ("127.0.0.1", peer.port))
        eng = make(peer.client_ctx, raw)
        await eng.handshake()
        await eng.sendall(cmd.encode() + b"\n")
        return eng

    await async_run(connect, total, reps, rounds, result)


async def async_run(
    connect: Callable[[str], Awaitable[Any]], total: int, reps: int, rounds: int, result: Result
) -> None:
    """Up, down and ping-pong through connections ``connect(command)`` opens; each has
    awaitable ``sendall``, ``recv_into``, ``recv`` and a plain ``close``."""

    block = b"x" * BLOCK
    buf = bytearray(RBUF)
    for rep in range(reps + 1):
        # up
        eng = await connect(f"sink {total}")
        t0, c0 = time.perf_counter(), _cpu()
        for _ in range(total // BLOCK):
            await eng.sendall(block)
        assert await eng.recv(1) == b"k"
        t1, c1 = time.perf_counter(), _cpu()
        eng.close()
        if rep:
            result.up.append(total / (t1 - t0) / 1e6)
            result.up_cpu.append((c1 - c0) / (total / BLOCK) * 1e6)
        # down
        eng = await connect(f"source {total}")
        got = 0
        t0, c0 = time.perf_counter(), _cpu()
        while got < total:
            n = await eng.recv_into(buf)
            assert n
            got += n
        t1, c1 = time.perf_counter(), _cpu()
        await eng.sendall(b"d")
        eng.close()
        if rep:
            result.down.append(total / (t1 - t0) / 1e6)
            result.down_cpu.append((c1 - c0) / (total / BLOCK) * 1e6)
    # ping-pong
    eng = await connect(f"echo {rounds * (reps + 1)}")
    for rep in range(reps + 1):
        t0, c0 = time.perf_counter(), _cpu()
        for _ in range(rounds):
            await eng.sendall(b"p")
            assert await eng.recv(1) == b"p"
        t1, c1 = time.perf_counter(), _cpu()
        if rep:
            result.rtt.append((t1 - t0) / rounds * 1e6)
            result.rtt_cpu.append((c1 - c0) / rounds * 1e6)
    eng.close()


def blocking_run(peer: Peer, total: int, reps: int, rounds: int, result: Result) -> None:
    """The reference: the stdlib's blocking SSLSocket, no event loop."""

    def connect(cmd: str) -> Any:
        raw = socket.create_connection(("127.0.0.1", peer.port), timeout=None)
        s = peer.client_ctx.wrap_socket(raw, server_hostname="localhost")
        s.sendall(cmd.encode() + b"\n")
        return s

    sync_run(connect, total, reps, rounds, result)


def sync_run(
    connect: Callable[[str], Any], total: int, reps: int, rounds: int, result: Result
) -> None:
    """Up, down and ping-pong through blocking connections ``connect(command)`` opens."""

    block = b"x" * BLOCK
    buf = bytearray(RBUF)
    for rep in range(reps + 1):
        s = connect(f"sink {total}")
        t0, c0 = time.perf_counter(), _cpu()
        for _ in range(total // BLOCK):
            s.sendall(block)
        assert s.recv(1) == b"k"
        t1, c1 = time.perf_counter(), _cpu()
        s.close()
        if rep:
            result.up.append(total / (t1 - t0) / 1e6)
            result.up_cpu.append((c1 - c0) / (total / BLOCK) * 1e6)
        s = connect(f"source {total}")
        got = 0
        t0, c0 = time.perf_counter(), _cpu()
        while got < total:
            n = s.recv_into(buf)
            assert n
            got += n
        t1, c1 = time.perf_counter(), _cpu()
        s.sendall(b"d")
        s.close()
        if rep:
            result.down.append(total / (t1 - t0) / 1e6)
            result.down_cpu.append((c1 - c0) / (total / BLOCK) * 1e6)
    s = connect(f"echo {rounds * (reps + 1)}")
    for rep in range(reps + 1):
        t0, c0 = time.perf_counter(), _cpu()
        for _ in range(rounds):
            s.sendall(b"p")
            assert s.recv(1) == b"p"
        t1, c1 = time.perf_counter(), _cpu()
        if rep:
            result.rtt.append((t1 - t0) / rounds * 1e6)
            result.rtt_cpu.append((c1 - c0) / rounds * 1e6)
    s.close()


def section_engines(peer: Peer, total: int, reps: int, rounds: int) -> None:
    print("## engines (asyncio selector loop, add_reader/add_writer waits)\n")
    print(HEADER)
    results = {"(a) SSLSocket non-blocking": Result(), "(b) MemoryBIO + SSLObject": Result()}
    makers: dict[str, Callable[[ssl.SSLContext, socket.socket], Engine]] = {
        "(a) SSLSocket non-blocking": EngineA,
        "(b) MemoryBIO + SSLObject": EngineB,
    }
    for _ in range(3):  # rounds, interleaved so a disturbance spreads over both
        for name, make in makers.items():
            with asyncio.Runner(loop_factory=asyncio.SelectorEventLoop) as runner:
                runner.run(engine_run(make, peer, total, reps, rounds, results[name]))
    base = Result()
    for _ in range(3):
        blocking_run(peer, total, reps, rounds, base)
    print(base.row("stdlib blocking SSLSocket (reference, no loop)"))
    for name, res in results.items():
        print(res.row(name))
    print()


# -- asocket's faces against their peers --------------------------------------------


class Streams:
    """asyncio streams with ssl=: the calls the runners make, in the streams' terms."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def sendall(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def recv_into(self, buf: bytearray) -> int:
        data = await self.reader.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    async def recv(self, n: int) -> bytes:
        return await self.reader.read(n)

    def close(self) -> None:
        self.writer.close()


def section_faces(peer: Peer, total: int, reps: int, rounds: int) -> None:
    import uvloop

    import asocket
    import asocket.sync

    print("## faces (asocket TLS against the stdlib and asyncio streams)\n")
    print(HEADER)
    address = ("127.0.0.1", peer.port)

    async def asocket_connect(cmd: str) -> Any:
        s = await asocket.create_connection(
            address, timeout=WAIT, ssl=peer.client_ctx, server_hostname="localhost"
        )
        s.settimeout(None)
        await s.sendall(cmd.encode() + b"\n")
        return s

    async def streams_connect(cmd: str) -> Any:
        r, w = await asyncio.open_connection(
            *address, ssl=peer.client_ctx, server_hostname="localhost", limit=RBUF
        )
        st = Streams(r, w)
        await st.sendall(cmd.encode() + b"\n")
        return st

    def sync_connect(cmd: str) -> Any:
        s = asocket.sync.create_connection(
            address, timeout=WAIT, ssl=peer.client_ctx, server_hostname="localhost"
        )
        s.settimeout(None)
        s.sendall(cmd.encode() + b"\n")
        return s

    loops: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.SelectorEventLoop,
        "uvloop": uvloop.new_event_loop,
    }
    rows: dict[str, Callable[[Result], None]] = {
        "stdlib blocking SSLSocket": lambda r: blocking_run(peer, total, reps, rounds, r),
        "asocket.sync SSLSocket (blocking mode)": lambda r: sync_run(
            sync_connect, total, reps, rounds, r
        ),
    }
    for loop_name, factory in loops.items():
        for row, connect in (
            (f"asocket SSLSocket, {loop_name}", asocket_connect),
            (f"asyncio streams ssl=, {loop_name}", streams_connect),
        ):

            def go(r: Result, factory: Any = factory, connect: Any = connect) -> None:
                with asyncio.Runner(loop_factory=factory) as runner:
                    runner.run(async_run(connect, total, reps, rounds, r))

            rows[row] = go
    results = {name: Result() for name in rows}
    for _ in range(3):  # interleaved rounds
        for name, go_row in rows.items():
            go_row(results[name])
    for name, res in results.items():
        print(res.row(name))
    base = results["stdlib blocking SSLSocket"]
    up0, down0 = statistics.median(base.up), statistics.median(base.down)
    print("\nratios against the stdlib's blocking SSLSocket (up, down):")
    for name, res in results.items():
        print(
            f"- {name}: {statistics.median(res.up) / up0:.2f}x, "
            f"{statistics.median(res.down) / down0:.2f}x"
        )
    for loop_name in loops:
        a = statistics.median(results[f"asocket SSLSocket, {loop_name}"].rtt)
        b = statistics.median(results[f"asyncio streams ssl=, {loop_name}"].rtt)
        ac = statistics.median(results[f"asocket SSLSocket, {loop_name}"].rtt_cpu)
        bc = statistics.median(results[f"asyncio streams ssl=, {loop_name}"].rtt_cpu)
        print(
            f"- ping-pong on {loop_name}: asocket {a:.1f} µs vs streams {b:.1f} µs "
            f"({b / a:.2f}x); CPU per round trip {ac:.1f} vs {bc:.1f} µs ({bc / ac:.2f}x)"
        )
    print()


# -- main ------------------------------------------------------------------------------

SECTIONS: dict[str, Callable[[Peer, int, int, int], None]] = {
    "engines": section_engines,
    "faces": section_faces,
}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--peer":
        peer_main(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    total = (16 if args.quick else 64) << 20
    reps = 1 if args.quick else 2
    rounds = 500 if args.quick else 2000
    print(f"python {sys.version.split()[0]}, {ssl.OPENSSL_VERSION}, load {os.getloadavg()[0]:.2f}")
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}\n")
    peer = Peer()
    try:
        for name in args.sections.split(","):
            SECTIONS[name](peer, total, reps, rounds)
    finally:
        peer.close()


if __name__ == "__main__":
    main()
