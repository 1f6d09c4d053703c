"""Regression tests for the fidelity defects of issue 13, one per defect.

Each test builds its scenario on the running stdlib's sockets and on asocket's
faces and compares what they return or raise (type, errno, message): the
expected behaviour is the running Python's, never a value written down here.
Async tests run on the loop matrix (asyncio, uvloop, noreadiness); a test of
the sync face alone is a plain test.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _diff import Face, check, check_sync

import asocket
import asocket.sync

LONG = 2.0  # a timeout that must not expire
HUNG = 0.5  # the async face's bound on a call the stdlib answers at once

WAITALL = socket.MSG_WAITALL
PEEK = socket.MSG_PEEK
ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0)
needs_errqueue = pytest.mark.skipif(not ERRQUEUE, reason="no MSG_ERRQUEUE")


def _tcp_pair(F: Face) -> tuple[Any, socket.socket]:
    """``(face socket, stdlib peer)`` connected on loopback, in blocking mode."""
    with socket.create_server(("127.0.0.1", 0)) as lst:
        raw = socket.create_connection(lst.getsockname())
        peer, _ = lst.accept()
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    print("DBG", F.label, socket.getdefaulttimeout(), raw.gettimeout(), peer.gettimeout())
    peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if F.name == "stdlib":
        return raw, peer
    return F.mod.from_socket(raw), peer


def _unix_pair(F: Face) -> tuple[Any, socket.socket]:
    """``(face socket, stdlib peer)``: an AF_UNIX stream pair, in blocking mode."""
    raw, peer = socket.socketpair()
    if F.name == "stdlib":
        return raw, peer
    return F.mod.from_socket(raw), peer


@contextlib.contextmanager
def after(delay: float, fn: Callable[..., Any], *args: Any) -> Iterator[None]:
    """Call ``fn(*args)`` on a thread after ``delay`` seconds, whatever the block does
    meanwhile (joined, never cancelled: a call that returned early must not hang the next)."""
    timer = threading.Timer(delay, fn, args)
    timer.start()
    try:
        yield
    finally:
        timer.join(5)


def _reset(peer: socket.socket) -> None:
    """Close ``peer`` with an RST (SO_LINGER 0)."""
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()


def _left(sock: Any) -> bytes:
    """What a stdlib socket still has queued (non-blocking reads until EAGAIN or EOF)."""
    sock.setblocking(False)
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


async def _left_face(F: Face, sock: Any) -> Any:
    """The bytes a face socket still has queued, and how the drain ended."""
    sock.settimeout(0.0)
    chunks = []
    while True:
        out = await F.outcome(sock.recv, 65536)
        if not hasattr(out, "value") or not out.value:
            return b"".join(chunks), out
        chunks.append(out.value)


# -- 1. MSG_PEEK | MSG_WAITALL in blocking mode ------------------------------------------


@pytest.mark.asyncio
async def test_peek_waitall_blocking_returns_queued_not_repeated(loop_kind: str) -> None:
    async def scenario(F: Face) -> Any:
        result: dict[str, Any] = {}
        # AF_UNIX: the kernel returns what is queued.
        sock, peer = _unix_pair(F)
        with sock, peer:
            peer.sendall(b"hello")
            result["unix recv"] = await F.outcome(sock.recv, 10, PEEK | WAITALL)
            buf = bytearray(10)
            result["unix recv_into"] = await F.outcome(sock.recv_into, buf, 10, PEEK | WAITALL)
            result["unix buffer"] = bytes(buf)
            result["unix left"] = await _left_face(F, sock)
        # TCP: the kernel waits for more than what is queued, and the peek consumes none
        # of it. (It returns once more arrives, with all n bytes or, at times, only those
        # it had: the running kernel's answer varies, so only its shape is compared.)
        sock, peer = _tcp_pair(F)
        with sock, peer:
            peer.sendall(b"hello")
            with after(0.1, peer.sendall, b"world"):
                out = await F.outcome(sock.recv, 10, PEEK | WAITALL)
            value = getattr(out, "value", None)
            result["tcp recv"] = value in (b"hello", b"helloworld") or out
            buf = bytearray(10)
            result["tcp recv_into"] = await F.outcome(sock.recv_into, buf, 0, PEEK | WAITALL)
            result["tcp buffer"] = bytes(buf)
            result["tcp left"] = await _left_face(F, sock)
        return result

    await check(scenario, loop_kind)


# -- 2. a cancelled recv(n, MSG_WAITALL) consumes nothing -------------------------------


def _stdlib_left(pair: str, sent: bytes) -> bytes:
    """What the stdlib's receiving end holds after the peer sent ``sent`` (no call made)."""
    sock, peer = (_tcp_pair if pair == "tcp" else _unix_pair)(Face("stdlib", socket))
    with sock, peer:
        peer.sendall(sent)
        return _left(sock)


@pytest.mark.asyncio
@pytest.mark.parametrize("pair", ["unix", "tcp"])
@pytest.mark.parametrize("method", ["recv", "recv_into"])
async def test_cancelled_waitall_recv_consumes_nothing(
    loop_kind: str, pair: str, method: str
) -> None:
    F = Face("async", asocket, loop_kind)
    sock, peer = (_tcp_pair if pair == "tcp" else _unix_pair)(F)
    with sock, peer:
        peer.sendall(b"hello")
        if method == "recv":
            call = sock.recv(10, WAITALL)
        else:
            call = sock.recv_into(bytearray(10), 10, WAITALL)
        task = asyncio.ensure_future(call)
        await asyncio.sleep(0.05)  # it gathers what is queued, then waits for the rest
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        peer.sendall(b"world")
        got, _end = await _left_face(F, sock)
    assert got == _stdlib_left(pair, b"helloworld")


# -- 3. MSG_WAITALL and a reset after some data --------------------------------------


def _waitall(sock: Any, method: str) -> Any:
    """``recv(100, MSG_WAITALL)`` or ``recv_into(buf, 100, MSG_WAITALL)``, given ``buf``."""
    if method == "recv":
        return lambda buf: sock.recv(100, WAITALL)
    return lambda buf: sock.recv_into(buf, 100, WAITALL)


@pytest.mark.asyncio
async def test_waitall_reset_after_data_raises_on_next_call(loop_kind: str) -> None:
    async def scenario(F: Face) -> Any:
        result: dict[str, Any] = {}
        for method in ("recv", "recv_into"):
            for when in ("before", "during"):
                sock, peer = _tcp_pair(F)
                with sock, peer:
                    peer.sendall(b"x" * 40)
                    buf = bytearray(100)
                    if when == "before":
                        _reset(peer)
                        first = await F.outcome(_waitall(sock, method), buf)
                    else:
                        with after(0.1, _reset, peer):
                            first = await F.outcome(_waitall(sock, method), buf)
                    result[method, when] = [
                        first,
                        await F.outcome(sock.recv, 100),
                        await F.outcome(sock.recv, 100),
                    ]
        return result

    await check(scenario, loop_kind)


@pytest.mark.asyncio
async def test_waitall_on_a_datagram_socket_returns_one_datagram(loop_kind: str) -> None:
    """Found with the fixes above: ``MSG_WAITALL`` in blocking mode gathered datagrams
    (concatenated, then waiting for more) on the async face."""

    async def scenario(F: Face) -> Any:
        result: dict[str, Any] = {}
        with F.mod.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            await F.call(u.bind, ("127.0.0.1", 0))
            for dgram in (b"ab", b"cd", b"ef"):
                await F.call(u.sendto, dgram, u.getsockname())
            with F.bounded(HUNG):
                result["recv"] = await F.outcome(u.recv, 10, WAITALL)
                buf = bytearray(10)
                result["recv_into"] = await F.outcome(u.recv_into, buf, 10, WAITALL)
                result["buffer"] = bytes(buf)
                result["recv peek"] = await F.outcome(u.recv, 10, WAITALL | PEEK)
        return result

    await check(scenario, loop_kind)


# -- 4. MSG_ERRQUEUE in blocking mode -----------------------------------------------


@needs_errqueue
@pytest.mark.asyncio
async def test_errqueue_blocking_raises_at_once_not_waits(loop_kind: str) -> None:
    async def scenario(F: Face) -> Any:
        result: dict[str, Any] = {}
        sock, peer = _tcp_pair(F)
        with sock, peer, F.bounded(HUNG):
            for queued in (b"", b"data"):
                peer.sendall(queued)
                result["recvfrom", queued] = await F.outcome(sock.recvfrom, 10, ERRQUEUE)
                result["recv", queued] = await F.outcome(sock.recv, 10, ERRQUEUE)
                result["recvmsg", queued] = await F.outcome(sock.recvmsg, 10, 0, ERRQUEUE)
            result["left"] = await _left_face(F, sock)
        # AF_UNIX ignores the flag: a blocking read of queued data returns it.
        sock, peer = _unix_pair(F)
        with sock, peer, F.bounded(HUNG):
            peer.sendall(b"data")
            result["unix recvfrom"] = await F.outcome(sock.recvfrom, 2, ERRQUEUE)
            result["unix recv"] = await F.outcome(sock.recv, 10, ERRQUEUE)
        return result

    await check(scenario, loop_kind)


# -- 5. malformed addresses are refused before resolution ------------------------------

# Each is refused by the stdlib's argument parsing, before any lookup: the name is
# never resolved by the stdlib (and the faces' resolver is the loopback-only guard).
NAME = "nosuch.invalid"
MALFORMED_V4 = [
    (NAME,),
    (NAME, 80, 0),
    (NAME, 80, 0, 0),  # an IPv6 4-tuple on an AF_INET socket
    (NAME, 80, 0, 0, 0),
    (NAME, "80"),
    (NAME, None),
    (NAME, 80.0),
    ("nosuch\0invalid", 80),
]
MALFORMED_V6 = [
    (NAME,),
    (NAME, 80, 0, 0, 0),
    (NAME, "80"),
    (NAME, 80, "0", 0),
    (NAME, 80, 0, "0"),
    ("nosuch\0invalid", 80),
]


def _has_inet6() -> bool:
    try:
        socket.socket(socket.AF_INET6).close()
    except OSError:
        return False
    return True


@pytest.mark.asyncio
async def test_malformed_address_checked_before_resolution(loop_kind: str) -> None:
    families = [(socket.AF_INET, MALFORMED_V4)]
    if _has_inet6():
        families.append((socket.AF_INET6, MALFORMED_V6))

    async def scenario(F: Face) -> Any:
        result: dict[Any, Any] = {}
        for family, addresses in families:
            for addr in addresses:
                for mode in (None, 0.0, LONG):
                    with F.mod.socket(family, socket.SOCK_STREAM) as s:
                        s.settimeout(mode)
                        result[family, addr, mode, "connect"] = await F.quick(s.connect, addr)
                    with F.mod.socket(family, socket.SOCK_STREAM) as s:
                        s.settimeout(mode)
                        result[family, addr, mode, "connect_ex"] = await F.quick(s.connect_ex, addr)
                with F.mod.socket(family, socket.SOCK_STREAM) as s:
                    result[family, addr, "bind"] = await F.quick(s.bind, addr)
                with F.mod.socket(family, socket.SOCK_DGRAM) as u:
                    result[family, addr, "sendto"] = await F.quick(u.sendto, b"x", addr)
                    result[family, addr, "sendto flags"] = await F.quick(u.sendto, b"x", 0, addr)
            well_formed = (NAME, 80) if family == socket.AF_INET else (NAME, 80, 0, 0)
            with F.mod.socket(family, socket.SOCK_DGRAM) as u:
                for flags in ("0", None, 1.0, b"\0"):
                    result[family, flags, "sendto bad flags"] = await F.quick(
                        u.sendto, b"x", flags, well_formed
                    )
        return result

    await check(scenario, loop_kind)


# -- 6. connect passes "", "<broadcast>" and a bytes-like host as given ---------------------


@pytest.mark.asyncio
async def test_connect_special_hosts_passed_as_given(loop_kind: str) -> None:

    async def scenario(F: Face) -> Any:
        result: dict[Any, Any] = {}
        with socket.create_server(("127.0.0.1", 0)) as lst:
            port = lst.getsockname()[1]
            for host in ("", "<broadcast>", bytearray(b"127.0.0.1"), b"127.0.0.1"):
                for mode in (None, LONG):
                    for method in ("connect", "connect_ex"):
                        with F.mod.socket() as s:
                            s.settimeout(mode)
                            out = await F.outcome(getattr(s, method), (host, port))
                            connected = True
                            try:
                                s.getpeername()
                            except OSError:
                                connected = False
                        result[
                            bytes(host) if isinstance(host, bytearray) else host, mode, method
                        ] = (
                            out,
                            connected,
                        )
                        if connected:
                            lst.accept()[0].close()
        return result

    await check(scenario, loop_kind)


# -- 7. sync face: an empty read after close() -------------------------------------------


def test_sync_empty_read_after_close_returns_empty() -> None:
    async def scenario(F: Face) -> Any:
        result: dict[str, Any] = {}
        a, b = F.mod.socketpair()
        with b:
            a.close()
            result["recv(0)"] = await F.outcome(a.recv, 0)
            result["recv_into(empty)"] = await F.outcome(a.recv_into, bytearray())
            result["recv_into(buf, 0)"] = await F.outcome(a.recv_into, bytearray(3), 0)
            result["recv(1)"] = await F.outcome(a.recv, 1)
            result["recvfrom(0)"] = await F.outcome(a.recvfrom, 0)
            result["recvmsg(0)"] = await F.outcome(a.recvmsg, 0)
        return result

    check_sync(scenario)


# -- 8. getsockopt/setsockopt refuse None -------------------------------------------


@pytest.mark.asyncio
async def test_sockopt_none_argument_raises_typeerror(loop_kind: str) -> None:
    async def scenario(F: Face) -> Any:
        result: dict[str, Any] = {}
        with F.mod.socket() as s:
            sol, rcv = socket.SOL_SOCKET, socket.SO_RCVBUF
            result["get 2"] = await F.outcome(s.getsockopt, sol, socket.SO_TYPE)
            result["get None"] = await F.outcome(s.getsockopt, sol, socket.SO_TYPE, None)
            result["get 4"] = await F.outcome(s.getsockopt, sol, socket.SO_TYPE, 4)
            result["get 5 args"] = await F.outcome(s.getsockopt, sol, socket.SO_TYPE, 4, 4)
            result["set None"] = await F.outcome(s.setsockopt, sol, rcv, 8192, None)
            result["set None value"] = await F.outcome(s.setsockopt, sol, rcv, None, 4)
            result["set None None"] = await F.outcome(s.setsockopt, sol, rcv, None, None)
            result["set 5 args"] = await F.outcome(s.setsockopt, sol, rcv, 8192, 4, 4)
            result["set bytes"] = await F.outcome(s.setsockopt, sol, rcv, b"\0" * 4)
        return result

    await check(scenario, loop_kind)


# -- 9. sendfile with a count beyond ssize_t ---------------------------------------


@pytest.fixture
def data_file() -> Iterator[Any]:
    with tempfile.TemporaryFile() as f:
        f.write(b"0123456789" * 10)
        f.flush()
        yield f


@pytest.mark.skipif(not hasattr(os, "sendfile"), reason="no os.sendfile")
@pytest.mark.asyncio
async def test_sendfile_count_overflow_raises_overflowerror(loop_kind: str, data_file: Any) -> None:
    async def scenario(F: Face) -> Any:
        result: dict[Any, Any] = {}
        for count in (2**63 - 1, 2**63, 2**64, 2**70):
            for mode in (None, LONG):
                sock, peer = _tcp_pair(F)
                with sock, peer:
                    sock.settimeout(mode)
                    data_file.seek(0)
                    out = await F.outcome(sock.sendfile, data_file, 0, count)
                    result[count, mode] = (out, data_file.tell(), _left(peer))
        for count in (2**63, 2**64):  # a file object without fileno(): the send() loop
            sock, peer = _tcp_pair(F)
            with sock, peer:
                out = await F.outcome(sock.sendfile, io.BytesIO(b"abc"), 0, count)
                result["BytesIO", count] = (out, _left(peer))
        return result

    await check(scenario, loop_kind)
