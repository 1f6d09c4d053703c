"""The read hint (``_engine.waits_first``, ``_tls.read``): after a read that had to wait, a plain
read (or a TLS plaintext read) probes the socket and, when nothing is there, waits
*before* its first attempt.

The order changes no result, only the cost: these tests check that every result is
the one a read that tries first gives (data, end of file, a pending reset, a timeout,
bad arguments raised at once, cancellation consuming nothing, close waking the
reader), on every backend (anyio's plugin: asyncio, uvloop, the loop without
``add_reader``, trio).
"""

from __future__ import annotations

import errno
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import pytest

anyio = pytest.importorskip("anyio")
pytest.importorskip("trustme")

from _async_helpers import peer_pair, read_sent_later, reset, slow_reads  # noqa: E402
from _tls_helpers import (  # noqa: E402
    Certs,
    Peer,
    certs_fixture as certs_fixture,
    tls_server,
)

import asocket  # noqa: E402

pytestmark = pytest.mark.anyio

WAIT = 5.0


async def test_a_read_that_finds_its_data_at_once_clears_the_hint() -> None:
    sock, peer = await peer_pair()
    with sock, peer:
        await slow_reads(sock, peer)
        peer.sendall(b"x" * 8)
        await anyio.sleep(0.05)
        with anyio.fail_after(WAIT):
            assert await sock.recv(8) == b"x" * 8  # probed readable, tried at once
        assert not sock._waited


async def test_data_already_there_is_read_after_the_probe() -> None:
    sock, peer = await peer_pair()
    with sock, peer:
        await slow_reads(sock, peer)
        peer.sendall(b"ready")
        await anyio.sleep(0.05)
        with anyio.fail_after(WAIT):
            assert await sock.recv(1024) == b"ready"
        assert not sock._waited  # found at once: the next read tries first


async def test_a_reset_behind_the_data_is_raised_at_once() -> None:
    # uvloop's readiness handle reports a socket in error only once: a read that
    # waited first on it would never wake. The probe sees the error and reads it.
    sock, peer = await peer_pair()
    with sock:
        await slow_reads(sock, peer)
        peer.sendall(b"last")
        reset(peer)
        await anyio.sleep(0.05)
        with anyio.fail_after(WAIT):
            assert await sock.recv(1024) == b"last"
            with pytest.raises(ConnectionResetError) as info:
                await sock.recv(1024)
        assert info.value.errno == errno.ECONNRESET


async def test_a_reset_while_waiting_first_wakes_the_reader() -> None:
    sock, peer = await peer_pair()
    with sock:
        await slow_reads(sock, peer)

        async def later() -> None:
            await anyio.sleep(0.05)
            reset(peer)

        async with anyio.create_task_group() as tg:
            tg.start_soon(later)
            with anyio.fail_after(WAIT), pytest.raises(ConnectionResetError):
                await sock.recv(1024)


async def test_end_of_file_after_slow_reads() -> None:
    sock, peer = await peer_pair()
    with sock:
        await slow_reads(sock, peer)
        peer.shutdown(socket.SHUT_WR)
        with anyio.fail_after(WAIT):
            assert await sock.recv(1024) == b""
            assert await sock.recv(1024) == b""  # and again, at once
        peer.close()


async def test_timeout_mode_times_out_on_a_hinted_read() -> None:
    sock, peer = await peer_pair()
    with sock, peer:
        await slow_reads(sock, peer)
        sock.settimeout(0.05)
        with anyio.fail_after(WAIT), pytest.raises(TimeoutError, match="timed out"):
            await sock.recv(1024)


async def test_a_reader_woken_for_another_keeps_its_deadline() -> None:
    """Two readers wait first on one socket in timeout mode; one byte wakes both, one
    reads it, and the other waits again until the deadline its call took at its start
    (one deadline per call, as the stdlib's), not a new one from the wake-up."""
    sock, peer = await peer_pair()
    with sock, peer:
        await slow_reads(sock, peer)
        sock.settimeout(1.0)
        got: list[bytes] = []
        late: list[float] = []

        async def reader() -> None:
            start = time.monotonic()
            try:
                got.append(await sock.recv(1))
            except TimeoutError:
                late.append(time.monotonic() - start)

        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(reader)
                tasks.start_soon(reader)
                await anyio.sleep(0.6)
                peer.sendall(b"x")
        assert got == [b"x"]
        assert len(late) == 1
        assert 1.0 <= late[0] < 1.45  # a new deadline from the wake-up: 1.6


async def test_non_blocking_mode_never_waits_first() -> None:
    sock, peer = await peer_pair()
    with sock, peer:
        await slow_reads(sock, peer)
        sock.setblocking(False)
        with anyio.fail_after(WAIT), pytest.raises(BlockingIOError):
            await sock.recv(1024)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((-1,), ValueError),  # negative buffersize
        (("x",), TypeError),
        ((1024, 0.0), TypeError),  # a float flags argument
    ],
)
async def test_bad_arguments_raise_at_once_on_a_hinted_socket(args: Any, error: Any) -> None:
    sock, peer = await peer_pair()
    with sock, peer:
        await slow_reads(sock, peer)
        with anyio.fail_after(WAIT), pytest.raises(error):
            await sock.recv(*args)


@pytest.mark.parametrize(
    "make",
    [lambda: bytearray(3), lambda: memoryview(bytearray(8))[::2], lambda: b"readonly"],
    ids=["too-small", "not-contiguous", "read-only"],
)
async def test_bad_buffers_raise_at_once_on_a_hinted_socket(make: Any) -> None:
    sock, peer = await peer_pair()
    with sock, peer:
        await slow_reads(sock, peer)
        with anyio.fail_after(WAIT), pytest.raises((ValueError, TypeError)):
            await sock.recv_into(make(), 4)


async def test_recv_into_follows_the_hint() -> None:
    sock, peer = await peer_pair()
    with sock, peer:
        await slow_reads(sock, peer)
        buf = bytearray(16)
        got = await read_sent_later(
            lambda: sock.recv_into(memoryview(buf)), lambda: peer.sendall(b"into")
        )
        assert got == 4
        assert bytes(buf[:4]) == b"into"
        assert sock._waited


async def test_a_cancelled_hinted_read_consumes_nothing() -> None:
    sock, peer = await peer_pair()
    with sock, peer:
        await slow_reads(sock, peer)
        with anyio.move_on_after(0.05) as scope:
            await sock.recv(1024)
        assert scope.cancelled_caught
        peer.sendall(b"kept")
        with anyio.fail_after(WAIT):
            assert await sock.recv(1024) == b"kept"


async def test_close_wakes_a_reader_waiting_first() -> None:
    sock, peer = await peer_pair()
    with peer:
        await slow_reads(sock, peer)

        async def close_later() -> None:
            await anyio.sleep(0.05)
            sock.close()

        async with anyio.create_task_group() as tg:
            tg.start_soon(close_later)
            with anyio.fail_after(WAIT), pytest.raises(OSError) as info:
                await sock.recv(1024)
        assert info.value.errno == errno.EBADF


async def test_datagram_reads_follow_the_hint() -> None:
    a = asocket.socket(asocket.AF_INET, asocket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with a, b:
        await a.bind(("127.0.0.1", 0))
        for _ in range(2):  # each read waits for its datagram
            got = await read_sent_later(
                lambda: a.recv(1024), lambda: b.sendto(b"d", a.getsockname())
            )
            assert got == b"d"
        assert a._waited
        b.sendto(b"one", a.getsockname())
        b.sendto(b"two", a.getsockname())
        await anyio.sleep(0.05)
        with anyio.fail_after(WAIT):  # queued datagrams: probed readable, read at once
            assert await a.recv(1024) == b"one"
            assert await a.recv(1024) == b"two"
        assert not a._waited


# -- TLS: the same hint before the first SSL read -------------------------------------


def slow_pings_then(then: Callable[[ssl.SSLSocket], Any]) -> Callable[[ssl.SSLSocket], Any]:
    """A server script: two pings the client must wait for, then ``then``."""

    def script(s: ssl.SSLSocket) -> Any:
        for _ in range(2):
            time.sleep(0.03)
            s.sendall(b"ping")
        assert s.recv(2) == b"go"  # the client has read both pings
        return then(s)

    return script


async def tls_client(certs: Certs, peer: Peer) -> asocket.SSLSocket:
    sock = await asocket.create_connection(peer.address, timeout=WAIT)
    tls = await asocket.wrap_socket(sock, certs.client_ctx(), server_hostname="localhost")
    with anyio.fail_after(WAIT):
        for _ in range(2):
            assert await tls.recv(1024) == b"ping"
    # The pings made the reads wait (unless the machine stalled this task for longer
    # than the peer's pause): the hint is set either way from here.
    tls._waited = True
    return tls


def send_then_close_notify(s: ssl.SSLSocket) -> None:
    s.sendall(b"last")
    try:
        s.unwrap()  # our close_notify; the client may close without its own
    except (ssl.SSLError, OSError):
        pass


def send_then_reset(s: ssl.SSLSocket) -> None:
    s.sendall(b"last")
    raw = socket.socket(fileno=s.detach())
    reset(raw)


async def test_tls_reads_after_slow_pings_end_with_close_notify(certs: Certs) -> None:
    with Peer(tls_server(certs.server_ctx(), slow_pings_then(send_then_close_notify))) as peer:
        tls = await tls_client(certs, peer)
        with tls:
            await tls.sendall(b"go")
            with anyio.fail_after(WAIT):
                assert await tls.recv(1024) == b"last"
                assert await tls.recv(1024) == b""
        peer.join()


async def test_tls_reset_behind_the_data_ends_the_read_at_once(certs: Certs) -> None:
    with Peer(tls_server(certs.server_ctx(), slow_pings_then(send_then_reset))) as peer:
        tls = await tls_client(certs, peer)
        with tls:
            await tls.sendall(b"go")
            peer.join()
            with anyio.fail_after(WAIT):
                assert await tls.recv(1024) == b"last"
                try:  # ECONNRESET, or a ragged end of file (b"": suppress_ragged_eofs)
                    assert await tls.recv(1024) == b""
                except OSError:
                    pass


async def test_tls_timeout_on_a_hinted_read(certs: Certs) -> None:
    def wait_for_bye(s: ssl.SSLSocket) -> None:
        assert s.recv(3) == b"bye"

    with Peer(tls_server(certs.server_ctx(), slow_pings_then(wait_for_bye))) as peer:
        tls = await tls_client(certs, peer)
        with tls:
            await tls.sendall(b"go")
            tls.settimeout(0.05)
            with anyio.fail_after(WAIT), pytest.raises(TimeoutError, match="read operation"):
                await tls.recv(1024)
            tls.settimeout(WAIT)
            await tls.sendall(b"bye")
        peer.join()


async def test_tls_bad_arguments_raise_at_once_on_a_hinted_socket(certs: Certs) -> None:
    def wait_for_bye(s: ssl.SSLSocket) -> None:
        assert s.recv(3) == b"bye"

    with Peer(tls_server(certs.server_ctx(), slow_pings_then(wait_for_bye))) as peer:
        tls = await tls_client(certs, peer)
        with tls:
            await tls.sendall(b"go")
            with anyio.fail_after(WAIT):
                with pytest.raises(ValueError):
                    await tls.recv(1024, None)  # type: ignore[arg-type]
                with pytest.raises(TypeError):
                    await tls.recv_into(b"read-only", 4)
                with anyio.move_on_after(0.05) as scope:  # a cancelled wait consumes nothing
                    await tls.recv(1024)
                assert scope.cancelled_caught
            await tls.sendall(b"bye")
        peer.join()
