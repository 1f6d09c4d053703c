"""TLS promises beyond the stdlib: full duplex, several waiters, close, cancellation.

Async tests run one body on every backend (the loop matrix and trio, see
``conftest.py``), with both ends asocket TLS sockets in the one event loop; their
sync twins use threads. Data is checked by hash; every wait is bounded.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from _async_helpers import Tasks, bounded, cancelled, tcp_pair, wait_all
from _tls_helpers import (
    WAIT,
    Certs,
    Peer,
    certs_fixture,  # noqa: F401  (fixture "certs")
    fd_count_fixture,  # noqa: F401  (fixture "fd_count")
    requires_tls,
)

import asocket
import asocket.sync

requires_tls()

BLOCK = os.urandom(1 << 20)
EACH_WAY = 64  # MiB each way, at once
KEY_UPDATE_EVERY = 8  # MiB: with key updates, each writer requests one this often
# A TLS 1.3 key update requested by both ends mid-transfer: each end's reader meets the
# peer's request and OpenSSL answers at once, while that end's writer is in the middle of
# a record. With the SSL object on the descriptor this broke the connection (OpenSSL's
# BAD_WRITE_RETRY); on memory BIOs the answer queues behind the record (``_tls.pump``).
KEY_UPDATES = "1.3-key-updates"


def _libssl() -> Any:
    """The libssl this Python's ``_ssl`` uses (ctypes), or skip."""
    if not sys.platform.startswith("linux") or not (3, 11) <= sys.version_info < (3, 14):
        pytest.skip("SSL_key_update through ctypes: Linux, CPython 3.11-3.13 only")
    with open("/proc/self/maps") as maps:
        paths = sorted({line.split()[-1] for line in maps if "libssl.so" in line})
    if not paths:
        pytest.skip("libssl is not loaded as a shared library")
    lib = ctypes.CDLL(paths[0])
    lib.SSL_key_update.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.SSL_version.argtypes = [ctypes.c_void_p]
    return lib


def request_key_update(lib: Any, tls: Any) -> None:
    """Make this end send a TLS 1.3 KeyUpdate with its next write, ``update_requested``
    (the peer must answer with one of its own). Python has no call for it: this is
    ``SSL_key_update`` on the ``SSL *`` of the stdlib's SSL object (the field after
    its weak reference to the socket, in CPython 3.11-3.13's ``PySSLSocket``)."""
    obj = tls._sock._sslobj
    ssl_ptr = ctypes.c_void_p.from_address(id(obj) + 3 * ctypes.sizeof(ctypes.c_void_p)).value
    assert lib.SSL_version(ssl_ptr) == 0x0304, "not the SSL object of a TLS 1.3 connection"
    assert lib.SSL_key_update(ssl_ptr, 1) == 1  # SSL_KEY_UPDATE_REQUESTED


async def tls_pair(certs: Certs, version: str = "1.3") -> tuple[Any, Any]:
    """(client, server) asocket TLS sockets over loopback TCP, handshakes done."""
    cli, srv = await tcp_pair()
    cctx = certs.client_ctx()
    if version == "1.2":
        cctx.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        async with Tasks() as tasks:
            client = tasks.spawn(asocket.wrap_socket(cli, cctx, server_hostname="localhost"))
            server = tasks.spawn(asocket.wrap_socket(srv, certs.server_ctx(), server_side=True))
            c, s = await client.join(), await server.join()
    except BaseException:
        cli.close()
        srv.close()
        raise
    return c, s


def sync_tls_pair(certs: Certs, version: str = "1.3") -> tuple[Any, Any]:
    """The same on the sync face: the server's handshake in a thread."""
    lst = asocket.sync.create_server(("127.0.0.1", 0))
    with lst:
        cli = asocket.sync.create_connection(lst.getsockname(), timeout=WAIT)
        srv, _ = lst.accept()
    srv.settimeout(WAIT)
    box: list[Any] = []
    t = threading.Thread(
        target=lambda: box.append(
            asocket.sync.wrap_socket(srv, certs.server_ctx(), server_side=True)
        )
    )
    t.start()
    cctx = certs.client_ctx()
    if version == "1.2":
        cctx.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        c = asocket.sync.wrap_socket(cli, cctx, server_hostname="localhost")
    finally:
        t.join(WAIT)
    assert box, "the server handshake failed"
    return c, box[0]


def digest(n: int) -> bytes:
    h = hashlib.sha256()
    for _ in range(n):
        h.update(BLOCK)
    return h.digest()


# -- full duplex -----------------------------------------------------------------------


async def _pump_async(sock: Any, lib: Any = None) -> bytes:
    async def writer() -> None:
        for i in range(EACH_WAY):
            if lib is not None and i % KEY_UPDATE_EVERY == 1:
                request_key_update(lib, sock)  # (one thread: no SSL call is under way)
            await sock.sendall(BLOCK)

    async def reader() -> bytes:
        h = hashlib.sha256()
        got = 0
        buf = bytearray(256 << 10)
        while got < EACH_WAY << 20:
            n = await sock.recv_into(buf)
            assert n, "EOF before the end"
            h.update(memoryview(buf)[:n])
            got += n
        return h.digest()

    async with Tasks() as tasks:
        sending, receiving = tasks.spawn(writer()), tasks.spawn(reader())
        await sending.join(60)
        return await receiving.join(60)


@pytest.mark.anyio
@pytest.mark.parametrize("version", ["1.2", "1.3", KEY_UPDATES])
async def test_full_duplex(certs: Certs, version: str) -> None:
    """A reader task and a writer task on each end, 64 MiB both ways at once,
    hash-checked; with ``1.3-key-updates`` each writer also requests a TLS 1.3 key
    update every 8 MiB (both ends answer them mid-transfer: no deadlock, no loss)."""
    lib = _libssl() if version.endswith("key-updates") else None
    c, s = await tls_pair(certs, version[:3])
    with c, s:
        c.settimeout(WAIT)
        s.settimeout(WAIT)
        async with Tasks() as tasks:
            pumps = [tasks.spawn(_pump_async(c, lib)), tasks.spawn(_pump_async(s, lib))]
            dc, ds = [await pump.join(60) for pump in pumps]
    assert dc == ds == digest(EACH_WAY)


def _pump_sync(sock: Any, out: dict[str, Any], key: str, lib: Any = None) -> list[threading.Thread]:
    def writer() -> None:
        for i in range(EACH_WAY):
            if lib is not None and i % KEY_UPDATE_EVERY == 1:
                with sock._lock:  # the lock the sync face holds around each SSL call
                    request_key_update(lib, sock)
            sock.sendall(BLOCK)

    def reader() -> None:
        h = hashlib.sha256()
        got = 0
        buf = bytearray(256 << 10)
        while got < EACH_WAY << 20:
            n = sock.recv_into(buf)
            assert n, "EOF before the end"
            h.update(memoryview(buf)[:n])
            got += n
        out[key] = h.digest()

    return [threading.Thread(target=writer), threading.Thread(target=reader)]


@pytest.mark.parametrize("version", ["1.2", "1.3", KEY_UPDATES])
def test_full_duplex_sync(certs: Certs, version: str) -> None:
    """Two threads per end, one reading while the other writes, 64 MiB both ways,
    hash-checked (with TLS 1.3 key updates requested mid-transfer: see above)."""
    lib = _libssl() if version.endswith("key-updates") else None
    c, s = sync_tls_pair(certs, version[:3])
    out: dict[str, Any] = {}
    with c, s:
        c.settimeout(WAIT)
        s.settimeout(WAIT)
        threads = _pump_sync(c, out, "c", lib) + _pump_sync(s, out, "s", lib)
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not any(t.is_alive() for t in threads)
    assert out == {"c": digest(EACH_WAY), "s": digest(EACH_WAY)}


# -- several waiters, close ------------------------------------------------------------


@pytest.mark.anyio
async def test_close_wakes_every_waiter(certs: Certs) -> None:
    """Two readers and a blocked writer: close() wakes all three with EBADF."""
    c, s = await tls_pair(certs)
    with s:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        async with Tasks() as tasks:
            readers = [tasks.spawn(c.recv(10)) for _ in range(2)]
            writer = await tasks.start(c.sendall(b"x" * (32 << 20)))  # s never reads
            assert not any(t.done() for t in [*readers, writer])
            c.close()
            assert not await wait_all(*readers, writer)
            for t in [*readers, writer]:
                exc = t.exception()
                assert isinstance(exc, OSError) and exc.errno == errno.EBADF, exc


def test_close_wakes_every_waiter_sync(certs: Certs) -> None:
    """Threads in recv (two) and in sendall: close() from another thread wakes them all."""
    c, s = sync_tls_pair(certs)
    errors: list[BaseException] = []

    def run(fn: Callable[[], Any]) -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    with s:
        c.settimeout(WAIT)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        threads = [threading.Thread(target=run, args=(lambda: c.recv(10),)) for _ in range(2)]
        threads.append(threading.Thread(target=run, args=(lambda: c.sendall(b"x" * (32 << 20)),)))
        for t in threads:
            t.start()
        time.sleep(0.2)
        c.close()
        for t in threads:
            t.join(WAIT)
        assert not any(t.is_alive() for t in threads)
    assert len(errors) == 3
    for exc in errors:
        assert isinstance(exc, OSError) and exc.errno == errno.EBADF, exc


# -- cancellation ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_cancelled_recv_loses_no_plaintext(certs: Certs) -> None:
    """A recv cancelled while waiting consumes nothing; the bytes come with the next recv."""
    c, s = await tls_pair(certs)
    with c, s:
        async with Tasks() as tasks:
            for i in range(3):
                # waiting: nothing has been sent yet
                await cancelled(await tasks.start(c.recv(100)))
                await s.sendall(b"plaintext %d" % i)
                got = b""
                while len(got) < 11:
                    got += await bounded(c.recv(100))
                assert got == b"plaintext %d" % i
            # The race: the data arrives, the waiting recv is woken, and is cancelled before
            # it runs. Either it got the data, or the next recv gets all of it.
            for i in range(20):
                task = await tasks.start(c.recv(100))
                await s.sendall(b"race %02d" % i)
                for _ in range(i % 3):
                    await anyio.sleep(0)
                task.cancel()
                await task.wait()
                got = b"" if task.cancelled() else task.result()
                while len(got) < 7:
                    got += await bounded(c.recv(100))
                assert got == b"race %02d" % i


async def _read_until_end(s: Any) -> bytes:
    got = bytearray()
    while not got.endswith(b"<END>"):
        data = await bounded(s.recv(1 << 16))
        assert data, "EOF before <END>"
        got += data
    return bytes(got)


def _check_prefix_then(got: bytes, interrupted: bytes, later: bytes) -> int:
    """``got`` is a prefix of ``interrupted`` followed exactly by ``later``."""
    assert got.endswith(later)
    head = got[: len(got) - len(later)]
    assert interrupted.startswith(head), "the interrupted data arrived corrupted"
    return len(head)


@pytest.mark.anyio
async def test_cancelled_sendall_never_corrupts(certs: Certs) -> None:
    """sendall cancelled mid-record: the next sendall completes the stream cleanly."""
    c, s = await tls_pair(certs)
    with c, s:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        data = os.urandom(8 << 20)
        async with Tasks() as tasks:
            # s is not reading: the send is blocked
            await cancelled(await tasks.start(c.sendall(data)))
            reading = tasks.spawn(_read_until_end(s))
            await bounded(c.sendall(b"later<END>"))
            got = await reading.join()
        assert _check_prefix_then(got, data, b"later<END>") < len(data)


@pytest.mark.anyio
async def test_timed_out_send_never_corrupts(certs: Certs) -> None:
    """A timed-out sendall, then a non-blocking send that would block: the stream stays sound."""
    c, s = await tls_pair(certs)
    with c, s:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        data = os.urandom(8 << 20)
        c.settimeout(0.1)
        with pytest.raises(TimeoutError, match="The write operation timed out"):
            await c.sendall(data)
        c.settimeout(0.0)
        with pytest.raises(ssl.SSLWantWriteError):
            await c.send(b"other" * 20000)  # nothing of it is sent while one is pending
        c.settimeout(WAIT)
        async with Tasks() as tasks:
            reading = tasks.spawn(_read_until_end(s))
            await c.sendall(b"later<END>")
            got = await reading.join()
        _check_prefix_then(got, data, b"later<END>")


@pytest.mark.anyio
async def test_nonblocking_send_retry_as_stdlib(certs: Certs) -> None:
    """Non-blocking send: SSLWantWriteError, then the same data again sends it once."""
    c, s = await tls_pair(certs)
    with c, s:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        c.settimeout(0.0)
        chunk = os.urandom(1 << 16)
        sent = bytearray()
        for _ in range(10_000):
            try:
                sent += chunk[: await c.send(chunk)]
            except ssl.SSLWantWriteError:
                break
        else:
            pytest.fail("the send buffer never filled")
        c.settimeout(WAIT)
        async with Tasks() as tasks:
            reading = tasks.spawn(_read_until_end(s))
            assert await c.send(chunk) == len(chunk)  # the retry, as the stdlib's
            await c.sendall(b"<END>")
            got = await reading.join()
        assert got == bytes(sent) + chunk + b"<END>"


def test_timed_out_sendall_never_corrupts_sync(certs: Certs) -> None:
    """Sync face: a timed-out sendall, then a sendall: prefix + exactly the later data."""
    got: list[bytes] = []
    go = threading.Event()

    def script(conn: socket.socket) -> None:
        with certs.server_ctx().wrap_socket(conn, server_side=True) as s:
            go.wait(WAIT)
            buf = bytearray()
            while not buf.endswith(b"<END>"):
                d = s.recv(65536)
                if not d:
                    break
                buf += d
            got.append(bytes(buf))

    with Peer(script) as peer:
        raw = asocket.sync.create_connection(peer.address, timeout=WAIT)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        c = asocket.sync.wrap_socket(raw, certs.client_ctx(), server_hostname="localhost")
        with c:
            data = os.urandom(8 << 20)
            c.settimeout(0.1)
            with pytest.raises(TimeoutError, match="The write operation timed out"):
                c.sendall(data)
            go.set()
            c.settimeout(WAIT)
            c.sendall(b"later<END>")
            peer.join()
    _check_prefix_then(got[0], data, b"later<END>")


@pytest.mark.anyio
async def test_cancelled_handshake_leaks_nothing(certs: Certs, fd_count: Callable[[], int]) -> None:
    """wrap_socket cancelled while the server is silent: the socket is closed, no fd leaks."""
    before = fd_count()
    cli, srv = await tcp_pair()
    with srv:
        async with Tasks() as tasks:
            handshake = asocket.wrap_socket(cli, certs.client_ctx(), server_hostname="localhost")
            await cancelled(await tasks.start(handshake))
        assert cli.fileno() == -1
    await anyio.sleep(0)
    assert fd_count() == before


@pytest.mark.anyio
async def test_timed_out_send_of_a_mutable_buffer(certs: Certs) -> None:
    """The interrupted bytes are kept as they were: changing the caller's bytearray after
    a timeout does not change what the next write finishes."""
    c, s = await tls_pair(certs)
    with c, s:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        original = os.urandom(4 << 20)
        data = bytearray(original)
        c.settimeout(0.1)
        with pytest.raises(TimeoutError):
            await c.sendall(data)
        data[:] = b"\0" * len(data)  # the caller reuses its buffer
        c.settimeout(WAIT)
        async with Tasks() as tasks:
            reading = tasks.spawn(_read_until_end(s))
            await c.sendall(b"later<END>")
            got = await reading.join()
        _check_prefix_then(got, original, b"later<END>")
