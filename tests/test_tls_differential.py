"""The same calls on the stdlib's ssl.SSLSocket and on both faces' SSLSocket:
same return value, exception type, errno and message (the async face on every
backend: the loop matrix and trio, see ``conftest.py``).

Messages that name the class (``... on <class 'ssl.SSLSocket'>``) are compared
with the class name normalised; everything else is compared exactly.
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import struct
import time
from collections.abc import Callable
from typing import Any

from _tls_helpers import (
    WAIT,
    Certs,
    Face,
    Peer,
    aw,
    certs_fixture,  # noqa: F401  (fixture "certs")
    echo,
    requires_tls,
    tls_server,
    twins,
)

requires_tls()

Call = Callable[[Any], Any]

# (label, call) pairs; each runs on a connected, handshaken socket in the given mode.
OPEN_CALLS: list[tuple[str, Call]] = [
    ("recv flags", lambda s: s.recv(10, socket.MSG_PEEK)),
    ("recv_into flags", lambda s: s.recv_into(bytearray(4), 4, socket.MSG_PEEK)),
    ("send flags", lambda s: s.send(b"x", socket.MSG_OOB)),
    ("sendall flags", lambda s: s.sendall(b"x", socket.MSG_OOB)),
    ("recvfrom", lambda s: s.recvfrom(10)),
    ("recvfrom_into", lambda s: s.recvfrom_into(bytearray(4))),
    ("sendto", lambda s: s.sendto(b"x", ("127.0.0.1", 9))),
    ("sendto flags", lambda s: s.sendto(b"x", 0, ("127.0.0.1", 9))),
    ("recvmsg", lambda s: s.recvmsg(10)),
    ("recvmsg_into", lambda s: s.recvmsg_into([bytearray(4)])),
    ("sendmsg", lambda s: s.sendmsg([b"x"])),
    ("recv negative", lambda s: s.recv(-1)),
    ("recv str", lambda s: s.recv("10")),
    ("send str", lambda s: s.send("text")),
    ("sendall None", lambda s: s.sendall(None)),
    ("recv_into bytes", lambda s: s.recv_into(b"immutable")),
    ("recv_into too many", lambda s: s.recv_into(bytearray(2), 5)),
    ("recv_into negative", lambda s: s.recv_into(bytearray(2), -1)),
    ("dup", lambda s: s.dup()),
    ("channel binding bad", lambda s: s.get_channel_binding("nope")),
    ("pending", lambda s: s.pending()),
    ("compression", lambda s: s.compression()),
    ("session_reused", lambda s: s.session_reused),
    ("server_side", lambda s: s.server_side),
    ("server_hostname", lambda s: s.server_hostname),
    ("getblocking", lambda s: s.getblocking()),
    ("gettimeout", lambda s: s.gettimeout()),
    ("settimeout bad", lambda s: s.settimeout(-1)),
    ("verify_client_post_handshake", lambda s: s.verify_client_post_handshake()),
    ("recv nothing yet", lambda s: s.recv(10)),  # SSLWantReadError / TimeoutError
    ("recv_into nothing yet", lambda s: s.recv_into(bytearray(10))),
    ("send empty", lambda s: s.send(b"")),
    ("sendall empty", lambda s: s.sendall(b"")),
]

CLOSED_CALLS: list[tuple[str, Call]] = [
    ("recv", lambda s: s.recv(10)),
    ("recv_into", lambda s: s.recv_into(bytearray(4))),
    ("send", lambda s: s.send(b"x")),
    ("sendall", lambda s: s.sendall(b"x")),
    ("do_handshake", lambda s: s.do_handshake()),
    ("unwrap", lambda s: s.unwrap()),
    ("cipher", lambda s: s.cipher()),
    ("version", lambda s: s.version()),
    ("pending", lambda s: s.pending()),
    ("selected_alpn_protocol", lambda s: s.selected_alpn_protocol()),
    ("shared_ciphers", lambda s: s.shared_ciphers()),
    ("compression", lambda s: s.compression()),
    ("get_channel_binding", lambda s: s.get_channel_binding()),
    ("session", lambda s: s.session),
    ("session_reused", lambda s: s.session_reused),
    ("fileno", lambda s: s.fileno()),
    ("getpeername", lambda s: s.getpeername()),
    ("getsockname", lambda s: s.getsockname()),
    ("settimeout", lambda s: s.settimeout(1.0)),
    ("gettimeout", lambda s: s.gettimeout()),
    ("shutdown", lambda s: s.shutdown(socket.SHUT_RDWR)),
    ("recvfrom", lambda s: s.recvfrom(10)),
    ("sendto", lambda s: s.sendto(b"x", ("127.0.0.1", 9))),
    ("close again", lambda s: s.close()),
]

_CLASS = re.compile(r"<class '[\w.]*SSLSocket'>|[\w.]*SSLSocket")


def _normalise(text: str) -> str:
    text = re.sub(r"<[\w.]*SSLSocket .*?>", "<SSLSocket ...>", text)  # reprs
    return _CLASS.sub("SSLSocket", text)


async def outcome(call: Call, s: Any) -> tuple[Any, ...]:
    try:
        value = await aw(call(s))
    except Exception as exc:
        return ("raise", type(exc).__name__, getattr(exc, "errno", None), _normalise(str(exc)))
    if isinstance(value, int | float | str | bytes | bool | type(None) | tuple):
        return ("return", value)
    return ("return", type(value).__name__)


def stdlib_outcomes(
    certs: Certs, mode: float | None, calls: list[tuple[str, Call]], close: bool
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with Peer(tls_server(certs.server_ctx(), echo)) as peer:
        raw = socket.create_connection(peer.address, timeout=WAIT)
        s = certs.client_ctx().wrap_socket(raw, server_hostname="localhost")
        s.settimeout(mode)
        if close:
            s.close()
        for label, call in calls:
            coro = outcome(call, s)
            try:
                coro.send(None)
            except StopIteration as stop:
                results[label] = stop.value
        s.close()
        peer.join(check=False)
    return results


async def face_outcomes(
    face: Face, certs: Certs, mode: float | None, calls: list[tuple[str, Call]], close: bool
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with Peer(tls_server(certs.server_ctx(), echo)) as peer:
        s = await face.tls_connect(peer.address, certs.client_ctx())
        s.settimeout(mode)
        if close:
            s.close()
        for label, call in calls:
            results[label] = await outcome(call, s)
        s.close()
        peer.join(check=False)
    return results


async def open_socket_calls(face: Face, certs: Certs) -> None:
    """Every call in OPEN_CALLS, in non-blocking and timeout mode."""
    for mode in (0.0, 0.05):
        expected = stdlib_outcomes(certs, mode, OPEN_CALLS, close=False)
        got = await face_outcomes(face, certs, mode, OPEN_CALLS, close=False)
        diffs = {k: (expected[k], got[k]) for k in expected if expected[k] != got[k]}
        assert not diffs, diffs


test_open_calls, test_open_calls_sync = twins(open_socket_calls, every_backend=True)


async def closed_socket_calls(face: Face, certs: Certs) -> None:
    """Every call in CLOSED_CALLS on a closed TLS socket."""
    expected = stdlib_outcomes(certs, WAIT, CLOSED_CALLS, close=True)
    got = await face_outcomes(face, certs, WAIT, CLOSED_CALLS, close=True)
    diffs = {k: (expected[k], got[k]) for k in expected if expected[k] != got[k]}
    assert not diffs, diffs


test_closed_calls, test_closed_calls_sync = twins(closed_socket_calls, every_backend=True)


def test_stdlib_wrap_of_sync_socket_still_works(certs: Certs) -> None:
    """context.wrap_socket(asocket.sync.socket(...)) gives the stdlib's SSLSocket, working."""
    import asocket.sync

    with Peer(tls_server(certs.server_ctx(), echo)) as peer:
        raw = asocket.sync.create_connection(peer.address, timeout=WAIT)
        with certs.client_ctx().wrap_socket(raw, server_hostname="localhost") as s:  # type: ignore[arg-type]
            assert isinstance(s, ssl.SSLSocket)
            s.sendall(b"abc")
            assert s.recv(3) == b"abc"
        peer.join()


# -- a peer that resets the connection -------------------------------------------------

RESET_CALLS: list[tuple[str, Call, bool]] = [  # (label, call, suppress_ragged_eofs)
    ("recv", lambda s: s.recv(10), True),
    ("recv, ragged EOFs not suppressed", lambda s: s.recv(10), False),
    ("recv_into", lambda s: s.recv_into(bytearray(10)), True),
    ("send", lambda s: s.send(b"x" * 10), True),
    ("sendall", lambda s: s.sendall(b"x" * 10), True),
    ("unwrap", lambda s: s.unwrap(), True),
]


def _reset(s: ssl.SSLSocket) -> None:
    """The peer script: after the handshake, close with a reset (SO_LINGER 0)."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


async def _after_reset(face: Face | None, certs: Certs, call: Call, suppress: bool) -> Any:
    """``call`` on a client TLS socket (the stdlib's for ``face=None``) whose peer
    reset the connection after the handshake: its outcome's type and errno."""
    with Peer(tls_server(certs.server_ctx(), _reset)) as peer:
        if face is None:
            raw = socket.create_connection(peer.address, timeout=WAIT)
            s = certs.client_ctx().wrap_socket(
                raw, server_hostname="localhost", suppress_ragged_eofs=suppress
            )
        else:
            s = await face.tls_connect(
                peer.address, certs.client_ctx(), suppress_ragged_eofs=suppress
            )
        peer.join()
        deadline = time.monotonic() + WAIT
        while not _reset_arrived(s.fileno()) and time.monotonic() < deadline:
            time.sleep(0.005)
        result = await outcome(call, s)
        s.close()
    return result[:3] if result[0] == "raise" else result


def _reset_arrived(fd: int) -> bool:
    """Whether the peer's reset has reached the socket (it is readable: the error)."""
    return bool(select.select([fd], [], [], 0)[0])


async def calls_after_a_reset(face: Face, certs: Certs) -> None:
    """A peer resets the connection after the handshake: each call gives the stdlib's
    outcome (type and errno; where the stdlib reports OpenSSL's EOF, before Python
    3.13, asocket's message differs: see docs/tls.md)."""
    diffs = {}
    for label, call, suppress in RESET_CALLS:
        expected = await _after_reset(None, certs, call, suppress)
        got = await _after_reset(face, certs, call, suppress)
        if got != expected:
            diffs[label] = (expected, got)
    assert not diffs, diffs


test_calls_after_a_reset, test_calls_after_a_reset_sync = twins(
    calls_after_a_reset, every_backend=True
)
