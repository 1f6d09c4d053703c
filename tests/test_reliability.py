"""Reliability (issue 12): soaks, faults and storms, every byte hashed, bounded in time.

* soak: ``serve_tcp`` with 1,000 concurrent connections on each backend, and
  200 threads on the sync face; every byte hashed both ways (the client's
  payload against what the handler received, what the handler sent against
  what the client received); descriptors back to the baseline after;
* faults: resets mid-transfer, half-close, slowloris, connect-and-vanish while
  the server serves the others, nothing reaching an asyncio loop's exception handler
  (conftest checks that after every async test);
* storms: cancelled (and timed-out) ``sendall`` calls leave a prefix of each
  interrupted payload then exactly the later payloads; ``close()`` while many
  tasks or threads wait wakes every one with ``OSError(EBADF)``, no descriptor
  leaked.

The async tests run on every backend (the loop matrix and trio: see ``conftest.py``).
Every test is bounded (``anyio.fail_after``, joins with timeouts); the counts
each test reaches are asserted, so a test that stops exercising its case fails.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import logging
import os
import random
import resource
import socket
import struct
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import pytest
from _async_helpers import WAIT, Task, Tasks, read_sent_later, tcp_pair, wait_all, wait_first
from conftest import ANYIO_BACKENDS

import asocket
import asocket.sync

SOAK_ASYNC = 1000  # concurrent connections per backend
SOAK_THREADS = 200  # concurrent connections (threads) on the sync face
BOUND = 60.0  # no test may take longer than this, whatever happens


@pytest.fixture(params=list(ANYIO_BACKENDS))
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """conftest's backends, with asyncio's debug mode off: it records a traceback for
    every handle, future and task, and makes these storms of thousands of tasks several
    times slower (the other anyio tests run with it on)."""
    name, options = ANYIO_BACKENDS[request.param]
    if name == "asyncio":
        options = {**options, "debug": False}
    return name, options


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def nofile(need: int) -> Iterator[None]:
    """Raise the soft RLIMIT_NOFILE to the hard limit for the test (skip if too low)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need} descriptors needed")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def settle_fds(baseline: int) -> int:
    """The descriptor count, once it is back to ``baseline`` (or after a bounded wait)."""
    for _ in range(200):
        count = open_fds()
        if count <= baseline:
            return count
        await anyio.sleep(0.01)
    return open_fds()


def settle_fds_sync(baseline: int) -> int:
    for _ in range(200):
        count = open_fds()
        if count <= baseline:
            return count
        time.sleep(0.01)
    return open_fds()


Ledger = dict[int, tuple[str, str]]  # client port -> (sha of bytes received, sha of bytes sent)


def async_hashing_echo(ledger: Ledger) -> Callable[[asocket.socket, Any], Awaitable[None]]:
    """An echo handler recording, per client port, the hashes of what it received and sent."""

    async def handler(sock: asocket.socket, address: Any) -> None:
        rx, tx = hashlib.sha256(), hashlib.sha256()
        try:
            while data := await sock.recv(65536):
                rx.update(data)
                await sock.sendall(data)
                tx.update(data)
        finally:
            ledger[address[1]] = (rx.hexdigest(), tx.hexdigest())

    return handler


def sync_hashing_echo(ledger: Ledger) -> Callable[[asocket.sync.socket, Any], None]:
    def handler(sock: asocket.sync.socket, address: Any) -> None:
        rx, tx = hashlib.sha256(), hashlib.sha256()
        try:
            while data := sock.recv(65536):
                rx.update(data)
                sock.sendall(data)
                tx.update(data)
        finally:
            ledger[address[1]] = (rx.hexdigest(), tx.hexdigest())

    return handler


# -- soak -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_soak_serve_tcp_1000_concurrent_connections() -> None:
    rng = random.Random(1000)
    payloads = [rng.randbytes(rng.randrange(1, 32 * 1024)) for _ in range(SOAK_ASYNC)]
    with nofile(2 * SOAK_ASYNC + 200):
        baseline = open_fds()
        ledger: Ledger = {}
        connected = 0
        all_connected = anyio.Event()
        go = anyio.Event()

        async def client(payload: bytes) -> tuple[int, str, str]:
            nonlocal connected
            sock = asocket.socket()
            with sock:
                await sock.connect(("127.0.0.1", port))
                me = sock.getsockname()[1]
                connected += 1
                if connected == SOAK_ASYNC:
                    all_connected.set()
                await go.wait()
                await sock.sendall(payload)
                sock.shutdown(asocket.SHUT_WR)
                got = hashlib.sha256()
                while chunk := await sock.recv(65536):
                    got.update(chunk)
                return me, sha(payload), got.hexdigest()

        server = await asocket.serve_tcp(
            async_hashing_echo(ledger), "127.0.0.1", 0, backlog=SOAK_ASYNC
        )
        with anyio.fail_after(BOUND):
            async with server:
                port = server.sockets[0].getsockname()[1]
                async with Tasks() as tasks:  # leaving it cancels any client still running
                    clients = [tasks.spawn(client(p)) for p in payloads]
                    await all_connected.wait()
                    while server.active_connections < SOAK_ASYNC:  # every one accepted, at once
                        await anyio.sleep(0.01)
                    peak = server.active_connections
                    go.set()
                    results = [await task.join(BOUND) for task in clients]
                while server.active_connections:  # the handlers record their hashes as they end
                    await anyio.sleep(0.01)
        assert peak == SOAK_ASYNC
        assert len(results) == SOAK_ASYNC
        for me, sent, received in results:
            assert ledger[me] == (sent, received)  # handler got what was sent, sent what came
            assert sent == received
        assert await settle_fds(baseline) == baseline


def test_soak_sync_serve_tcp_200_threads() -> None:
    rng = random.Random(200)
    payloads = [rng.randbytes(rng.randrange(1, 64 * 1024)) for _ in range(SOAK_THREADS)]
    with nofile(2 * SOAK_THREADS + 200):
        baseline = open_fds()
        ledger: Ledger = {}
        barrier = threading.Barrier(SOAK_THREADS + 1, timeout=BOUND)
        results: list[tuple[int, str, str]] = []
        errors: list[BaseException] = []

        def client(payload: bytes) -> None:
            try:
                with asocket.sync.create_connection(("127.0.0.1", port), timeout=BOUND) as sock:
                    me = sock.getsockname()[1]
                    barrier.wait()  # all connected
                    barrier.wait()  # the server has them all
                    sock.sendall(payload)
                    sock.shutdown(asocket.sync.SHUT_WR)
                    got = hashlib.sha256()
                    while chunk := sock.recv(65536):
                        got.update(chunk)
                    results.append((me, sha(payload), got.hexdigest()))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                barrier.abort()

        with asocket.sync.serve_tcp(
            sync_hashing_echo(ledger), "127.0.0.1", 0, backlog=SOAK_THREADS
        ) as server:
            port = server.sockets[0].getsockname()[1]
            threads = [threading.Thread(target=client, args=(p,)) for p in payloads]
            for t in threads:
                t.start()
            try:
                barrier.wait()
                deadline = time.monotonic() + BOUND
                while server.active_connections < SOAK_THREADS and time.monotonic() < deadline:
                    time.sleep(0.01)
                peak = server.active_connections
                barrier.wait()
            finally:
                for t in threads:
                    t.join(BOUND)
            deadline = time.monotonic() + BOUND
            while server.active_connections and time.monotonic() < deadline:
                time.sleep(0.01)
        assert not errors, errors[:3]
        assert peak == SOAK_THREADS
        assert len(results) == SOAK_THREADS
        for me, sent, received in results:
            assert ledger[me] == (sent, received)
            assert sent == received
        assert settle_fds_sync(baseline) == baseline


# -- faults -----------------------------------------------------------------------------

NORMAL, HALF_CLOSE, RESETS, VANISH, SLOWLORIS = 150, 20, 20, 40, 3
LINGER_0 = struct.pack("ii", 1, 0)  # close() then sends RST


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=WAIT * 4)


def normal_client(port: int, payload: bytes) -> tuple[int, str, str]:
    """Ping-pong: each piece sent, then its echo read; closed without a shutdown."""
    with _connect(port) as sock:
        me = sock.getsockname()[1]
        got = bytearray()
        for i in range(0, len(payload), 4096):
            piece = payload[i : i + 4096]
            sock.sendall(piece)
            need = len(got) + len(piece)
            while len(got) < need:
                chunk = sock.recv(65536)
                assert chunk, "the server closed early"
                got += chunk
        return me, sha(payload), sha(bytes(got))


def half_close_client(port: int, payload: bytes) -> tuple[int, str, str]:
    """Everything sent, then shutdown(SHUT_WR), then the echo read to EOF."""
    with _connect(port) as sock:
        me = sock.getsockname()[1]
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        got = bytearray()
        while chunk := sock.recv(65536):
            got += chunk
        return me, sha(payload), sha(bytes(got))


def reset_client(port: int, payload: bytes) -> None:
    """Reset mid-transfer: send, read part of the echo, then close with SO_LINGER 0 (RST)."""
    sock = _connect(port)
    try:
        sock.sendall(payload)
        assert sock.recv(1000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_0)
    finally:
        sock.close()


def vanish_client(port: int, rst: bool) -> None:
    """Connect, then go at once (FIN, or RST with SO_LINGER 0), nothing sent."""
    sock = _connect(port)
    if rst:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_0)
    sock.close()


def slowloris_client(port: int, others_done: threading.Event) -> tuple[int, str, str]:
    """One byte per 50 ms, until the other clients have all been served (at least 10)."""
    with _connect(port) as sock:
        me = sock.getsockname()[1]
        sent = bytearray()
        deadline = time.monotonic() + BOUND
        while (len(sent) < 10 or not others_done.is_set()) and time.monotonic() < deadline:
            byte = bytes([65 + len(sent) % 26])
            sock.sendall(byte)
            sent += byte
            time.sleep(0.05)
        assert others_done.is_set(), "the others were not served while a slowloris dribbled"
        sock.shutdown(socket.SHUT_WR)
        got = bytearray()
        while chunk := sock.recv(65536):
            got += chunk
        return me, sha(bytes(sent)), sha(bytes(got))


def run_faults(port: int) -> tuple[list[tuple[int, str, str]], dict[str, int]]:
    """Every fault at once against the server on ``port``; return the results of the
    clients that must be served (normal, half-close, slowloris) and the counts."""
    rng = random.Random(42)
    others_done = threading.Event()
    jobs: list[Callable[[], Any]] = []
    for _ in range(NORMAL):
        payload = rng.randbytes(rng.randrange(1, 48 * 1024))
        jobs.append(functools.partial(normal_client, port, payload))
    for _ in range(HALF_CLOSE):
        payload = rng.randbytes(rng.randrange(1, 48 * 1024))
        jobs.append(functools.partial(half_close_client, port, payload))
    for _ in range(RESETS):
        payload = rng.randbytes(64 * 1024)
        jobs.append(functools.partial(reset_client, port, payload))
    for i in range(VANISH):
        jobs.append(functools.partial(vanish_client, port, bool(i % 2)))
    rng.shuffle(jobs)
    with ThreadPoolExecutor(SLOWLORIS + 16) as pool:
        slow = [pool.submit(slowloris_client, port, others_done) for _ in range(SLOWLORIS)]
        futures = [pool.submit(job) for job in jobs]
        results = [f.result(timeout=BOUND) for f in futures]
        others_done.set()
        results += [f.result(timeout=BOUND) for f in slow]
    served = [r for r in results if r is not None]
    counts = {
        "normal": NORMAL,
        "half_close": HALF_CLOSE,
        "slowloris": SLOWLORIS,
        "resets": RESETS,
        "vanish": VANISH,
    }
    assert len(served) == NORMAL + HALF_CLOSE + SLOWLORIS
    return served, counts


def check_ledger(ledger: Ledger, served: list[tuple[int, str, str]]) -> None:
    for me, sent, received in served:
        assert sent == received
        assert ledger[me] == (sent, received)


@pytest.mark.anyio
async def test_faults_leave_the_others_served(caplog: pytest.LogCaptureFixture) -> None:
    baseline = open_fds()
    ledger: Ledger = {}
    server = await asocket.serve_tcp(async_hashing_echo(ledger), "127.0.0.1", 0, backlog=512)
    with anyio.fail_after(BOUND):
        async with server:
            port = server.sockets[0].getsockname()[1]
            served, _ = await anyio.to_thread.run_sync(run_faults, port)
            while server.active_connections:
                await anyio.sleep(0.01)
            # still serving after the storm of faults
            after = await anyio.to_thread.run_sync(half_close_client, port, b"after")
            assert after[1] == sha(b"after")
    check_ledger(ledger, served)
    # A reset handler's ConnectionResetError is logged as a handler error, nothing else is.
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) <= RESETS + VANISH
    for record in errors:
        exc = record.exc_info[1] if record.exc_info else None
        assert isinstance(exc, ConnectionError), record.getMessage()
    assert await settle_fds(baseline) == baseline


def test_sync_faults_leave_the_others_served(caplog: pytest.LogCaptureFixture) -> None:
    baseline = open_fds()
    ledger: Ledger = {}
    with asocket.sync.serve_tcp(sync_hashing_echo(ledger), "127.0.0.1", 0, backlog=512) as server:
        port = server.sockets[0].getsockname()[1]
        served, _ = run_faults(port)
        deadline = time.monotonic() + BOUND
        while server.active_connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert half_close_client(port, b"after")[1] == sha(b"after")
    check_ledger(ledger, served)
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(errors) <= RESETS + VANISH
    for record in errors:
        exc = record.exc_info[1] if record.exc_info else None
        assert isinstance(exc, ConnectionError), record.getMessage()
    assert settle_fds_sync(baseline) == baseline


# -- an error report: the socket stays watched after it -----------------------------------
# A connected datagram socket learns of a datagram sent to a port nobody has through an
# ICMP error, reported as an error on the socket (POLLERR): the one read that takes it
# raises ConnectionRefusedError, and the socket is then as before. uvloop closes its
# handle for an fd on such a report; the readiness waiter must see that and register
# the fd afresh at its next wait (``asocket/_waiters/readiness.py``), or every later wait on the
# socket sleeps forever.

ERROR_ROUNDS = 3


def _unused_udp_port() -> int:
    """A loopback UDP port that nobody has bound (now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _udp_peer() -> socket.socket:
    """A stdlib UDP socket on loopback, to send datagrams to the socket under test."""
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    return peer


async def _woken_by_an_error_report(
    sock: asocket.socket, tasks: Tasks, readers: int
) -> list[Task[bytes]]:
    """``readers`` tasks waiting in ``sock.recv``, once ``sock`` (connected to a port
    nobody has) sends a datagram whose ICMP error is reported on it (POLLERR)."""
    await sock.connect(("127.0.0.1", _unused_udp_port()))
    waiting = [tasks.spawn(sock.recv(100)) for _ in range(readers)]
    with anyio.fail_after(WAIT):
        await anyio.wait_all_tasks_blocked()  # every read is waiting
    await sock.send(b"anyone?")  # -> ICMP port unreachable: an error report
    return waiting


@pytest.mark.skipif(sys.platform != "linux", reason="ICMP errors on loopback: Linux's rules")
@pytest.mark.anyio
async def test_an_error_report_leaves_the_waiting_socket_watched() -> None:
    sock = asocket.socket(asocket.AF_INET, asocket.SOCK_DGRAM)
    with _udp_peer() as peer, sock, anyio.fail_after(BOUND):
        await sock.bind(("127.0.0.1", 0))
        for _ in range(ERROR_ROUNDS):
            async with Tasks() as tasks:
                waiting = await _woken_by_an_error_report(sock, tasks, readers=2)
                refused = await wait_first(*waiting)
                assert len(refused) == 1  # one read takes the error; the other waits on
                assert isinstance(refused[0].exception(), ConnectionRefusedError)
                (still,) = [task for task in waiting if task not in refused]
                await sock.connect(peer.getsockname())
                peer.sendto(b"late", sock.getsockname())
                assert not await wait_all(still)
                assert still.result() == b"late"
            got = await read_sent_later(
                lambda: sock.recv(100), lambda: peer.sendto(b"later", sock.getsockname())
            )
            assert got == b"later"


@pytest.mark.skipif(sys.platform != "linux", reason="ICMP errors on loopback: Linux's rules")
@pytest.mark.anyio
async def test_a_socket_closed_after_an_error_report_frees_its_fd_number() -> None:
    sock = asocket.socket(asocket.AF_INET, asocket.SOCK_DGRAM)
    with _udp_peer() as peer, sock, anyio.fail_after(BOUND):
        async with Tasks() as tasks:
            (waiting,) = await _woken_by_an_error_report(sock, tasks, readers=1)
            assert not await wait_all(waiting)
        assert isinstance(waiting.exception(), ConnectionRefusedError)
        number = sock.fileno()
        sock.close()  # (on uvloop: with the loop's handle for the fd closed)
        with asocket.socket(asocket.AF_INET, asocket.SOCK_DGRAM) as again:
            assert again.fileno() == number  # (the lowest free number: the one just closed)
            await again.bind(("127.0.0.1", 0))
            got = await read_sent_later(
                lambda: again.recv(100), lambda: peer.sendto(b"hi", again.getsockname())
            )
            assert got == b"hi"


@pytest.mark.skipif(sys.platform != "linux", reason="ICMP errors on loopback: Linux's rules")
def test_sync_an_error_report_leaves_the_blocked_socket_watched() -> None:
    with (
        _udp_peer() as peer,
        asocket.sync.socket(asocket.AF_INET, asocket.SOCK_DGRAM) as sock,
        ThreadPoolExecutor(1) as pool,
    ):
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(WAIT)
        for _ in range(ERROR_ROUNDS):
            sock.connect(("127.0.0.1", _unused_udp_port()))
            blocked = pool.submit(sock.recv, 100)
            time.sleep(0.02)  # let it block
            sock.send(b"anyone?")
            with pytest.raises(ConnectionRefusedError):
                blocked.result(timeout=BOUND)
            sock.connect(peer.getsockname())
            blocked = pool.submit(sock.recv, 100)
            time.sleep(0.02)
            peer.sendto(b"late", sock.getsockname())
            assert blocked.result(timeout=BOUND) == b"late"


# -- storms -----------------------------------------------------------------------------

PAYLOADS = 300  # sendall calls per storm: the even ones interrupted, the odd ones whole
ROUNDS = 200  # close storms: rounds of 23 waiting tasks


def runs(data: bytes) -> list[tuple[int, int]]:
    """``data`` as (byte value, run length) pairs."""
    out: list[tuple[int, int]] = []
    for value in data:
        if out and out[-1][0] == value:
            out[-1] = (value, out[-1][1] + 1)
        else:
            out.append((value, 1))
    return out


def check_stream(got: bytes, sent: list[tuple[int, int, bool]]) -> int:
    """Payload ``i`` is ``size`` bytes of value ``i % 256``; ``whole`` says it was sent
    entirely. The stream must be, in order, each payload whole or (interrupted) a prefix
    of it, nothing after. Returns how many interrupted payloads arrived cut short."""
    stream = runs(got)
    j = cut = 0
    for i, size, whole in sent:
        length = 0
        if j < len(stream) and stream[j][0] == i % 256:
            length = stream[j][1]
            j += 1
        if whole:
            assert length == size, f"payload {i}: {length} of {size} bytes"
        else:
            assert length <= size, f"payload {i}: {length} > {size} bytes"
            cut += 0 < length < size
    assert j == len(stream), f"bytes after the last payload: {stream[j : j + 3]}"
    return cut


async def _read_all(sock: asocket.socket) -> bytes:
    """Read to EOF, in pieces of random sizes, pausing now and then: sendall must wait."""
    rng = random.Random(0)
    got = bytearray()
    while chunk := await sock.recv(rng.choice([1024, 4096, 16384])):
        got += chunk
        if rng.random() < 0.2:
            await anyio.sleep(0.0002)
    return bytes(got)


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["cancel", "settimeout"])
async def test_sendall_storm_sends_nothing_after_the_interruption(how: str) -> None:
    # A Unix stream pair: the sender's buffer bounds what is in flight (over loopback TCP
    # the receiver's window takes a whole payload at once, or stalls on a tiny one).
    rng = random.Random(how)
    cli, srv = asocket.socketpair()
    async with Tasks() as tasks:
        cli.setsockopt(asocket.SOL_SOCKET, asocket.SO_SNDBUF, 4096)
        reader = tasks.spawn(_read_all(srv))
        sent: list[tuple[int, int, bool]] = []
        interrupted = 0
        with cli, srv, anyio.fail_after(BOUND):
            for i in range(PAYLOADS):
                size = rng.randrange(8 * 1024, 64 * 1024)
                data = bytes([i % 256]) * size
                if i % 2:
                    await cli.sendall(data)
                    sent.append((i, size, True))
                    continue
                whole = True
                if how == "cancel":
                    task = tasks.spawn(cli.sendall(data))
                    for _ in range(rng.randrange(12)):  # a few steps of the race
                        await anyio.sleep(0)
                    if rng.random() < 0.5:
                        await anyio.sleep(rng.choice([0.0002, 0.0005, 0.001]))
                    task.cancel()
                    await task.wait()
                    if task.cancelled():
                        whole = False
                    else:
                        task.result()  # it ended in time: returned (or raised, failing here)
                else:
                    cli.settimeout(rng.choice([0.0001, 0.0005, 0.001]))
                    try:
                        await cli.sendall(data)
                    except TimeoutError:
                        whole = False
                    cli.settimeout(None)
                interrupted += not whole
                sent.append((i, size, whole))
            cli.shutdown(asocket.SHUT_WR)
            got = await reader.join(BOUND)
    cut = check_stream(got, sent)
    assert interrupted > PAYLOADS // 10, "the storm interrupted too few calls: it tests nothing"
    assert cut > 0, "no payload was cut short: the storm tests nothing"


def test_sync_sendall_timeout_storm_sends_nothing_after_the_timeout() -> None:
    rng = random.Random(7)
    cli, srv = asocket.sync.socketpair()
    with cli, srv:
        cli.setsockopt(asocket.sync.SOL_SOCKET, asocket.sync.SO_SNDBUF, 4096)
        srv.settimeout(BOUND)
        got = bytearray()

        def read() -> None:
            while chunk := srv.recv(4096):
                got.extend(chunk)
                if rng.random() < 0.2:
                    time.sleep(0.0002)  # a slow reader: sendall has to wait

        reader = threading.Thread(target=read)
        reader.start()
        sent: list[tuple[int, int, bool]] = []
        interrupted = 0
        try:
            for i in range(PAYLOADS):
                size = rng.randrange(8 * 1024, 64 * 1024)
                data = bytes([i % 256]) * size
                whole = True
                cli.settimeout(WAIT if i % 2 else rng.choice([0.0001, 0.0005, 0.001]))
                try:
                    cli.sendall(data)
                except TimeoutError:
                    assert not i % 2
                    whole = False
                interrupted += not whole
                sent.append((i, size, whole))
            cli.shutdown(asocket.sync.SHUT_WR)
        finally:
            reader.join(BOUND)
    assert not reader.is_alive()
    check_stream(bytes(got), sent)
    assert interrupted > PAYLOADS // 10, "the storm interrupted too few calls: it tests nothing"


async def _listener() -> asocket.socket:
    lst = asocket.socket()
    await lst.bind(("127.0.0.1", 0))
    lst.listen()
    return lst


async def _fill(sock: asocket.socket) -> None:
    sock.settimeout(0.0)
    with contextlib.suppress(BlockingIOError):
        for _ in range(10_000):
            await sock.send(b"x" * 65536)
    sock.settimeout(None)


@pytest.mark.anyio
async def test_close_storm_wakes_every_waiting_task_with_ebadf() -> None:
    baseline = open_fds()
    woken = 0
    with anyio.fail_after(BOUND):
        for _ in range(ROUNDS):
            quiet, quiet_peer = await tcp_pair()  # nothing to read: recv waits
            full, full_peer = await tcp_pair()  # a full send buffer: sendall waits
            lst = await _listener()
            full.setsockopt(asocket.SOL_SOCKET, asocket.SO_SNDBUF, 4096)
            await _fill(full)
            async with Tasks() as tasks:
                waiting: list[Task[Any]] = [tasks.spawn(quiet.recv(100)) for _ in range(10)]
                waiting += [tasks.spawn(quiet.recv_into(bytearray(10))) for _ in range(3)]
                waiting += [tasks.spawn(lst.accept()) for _ in range(5)]
                waiting += [tasks.spawn(full.sendall(b"y" * 100_000)) for _ in range(5)]
                with anyio.fail_after(WAIT):
                    await anyio.wait_all_tasks_blocked()  # every task is waiting now
                assert not any(t.done() for t in waiting)
                for sock in (quiet, lst, full):  # in one step: no task runs in between
                    sock.close()
                quiet_peer.close()
                full_peer.close()
                assert not await wait_all(*waiting)
            for task in waiting:
                result = task.exception()
                assert isinstance(result, OSError), result
                assert result.errno == errno.EBADF, result
            woken += len(waiting)
    assert woken == ROUNDS * 23
    assert await settle_fds(baseline) == baseline


def _sync_close_round(blocking: bool) -> list[BaseException | None]:
    """16 threads blocked on three sockets (recv, accept, sendall), all closed at once
    from this thread: what each thread's call raised (``None`` if it returned)."""
    lst = asocket.sync.create_server(("127.0.0.1", 0))
    srv, peer = asocket.sync.socketpair()  # nothing to read: recv blocks
    cli, cli_peer = asocket.sync.socketpair()  # a full send buffer: sendall blocks
    cli.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        for _ in range(10_000):
            cli.send(b"x" * 65536)
    cli.setblocking(True)
    srv.settimeout(None if blocking else 30.0)  # blocking mode, or timeout mode
    lst.settimeout(None)
    outcomes: list[BaseException | None] = []
    started = threading.Barrier(17, timeout=BOUND)

    def blocked(call: Callable[[], Any]) -> None:
        started.wait()
        try:
            call()
        except BaseException as exc:
            outcomes.append(exc)
        else:  # pragma: no cover - the failure reported by the caller
            outcomes.append(None)

    calls: list[Callable[[], Any]] = [lambda: srv.recv(100) for _ in range(8)]
    calls += [lst.accept for _ in range(4)]
    calls += [lambda: cli.sendall(b"y" * 100_000) for _ in range(4)]
    threads = [threading.Thread(target=blocked, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(0.02)  # let them block (if one has not, it meets a closed socket: EBADF too)
    for sock in (srv, lst, cli):
        sock.close()
    for t in threads:
        t.join(WAIT)
    peer.close()
    cli_peer.close()
    assert not any(t.is_alive() for t in threads), "close() left a thread blocked"
    return outcomes


def test_sync_close_storm_wakes_every_blocked_thread_with_ebadf() -> None:
    baseline = open_fds()
    woken = 0
    for round_ in range(20):
        outcomes = _sync_close_round(blocking=bool(round_ % 2))
        for outcome in outcomes:
            assert isinstance(outcome, OSError), outcome
            assert outcome.errno == errno.EBADF, outcome
        woken += len(outcomes)
    assert woken == 20 * 16
    assert settle_fds_sync(baseline) == baseline
