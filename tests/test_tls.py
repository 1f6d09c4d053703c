"""TLS on both faces: wrap_socket, modes, errors, EOFs, unwrap, features.

Each body runs twice (see ``_tls_helpers.twins``): awaited on every backend (the
loop matrix and trio, see ``conftest.py``), and on the sync face. The other end is
the stdlib's blocking ``ssl.SSLSocket`` in a thread (``Peer``), so what is checked
is asocket against a peer nobody here wrote. Loopback only; every wait bounded.
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import ssl
import tempfile
import threading
import time
from typing import Any

import pytest
from _tls_helpers import (
    HOST,
    WAIT,
    Certs,
    Face,
    Peer,
    aw,
    certs_fixture,  # noqa: F401  (fixture "certs")
    echo,
    read_all,
    read_n,
    requires_tls,
    tls_server,
    twins as _twins,
)

import asocket

requires_tls()


def twins(body: Any) -> tuple[Any, Any]:
    """``_tls_helpers.twins``, the async test on every backend (trio included)."""
    return _twins(body, every_backend=True)


def _versions(version: str) -> dict[str, Any]:
    v = ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2
    return {"minimum_version": v, "maximum_version": v}


# -- wrapping, attributes, round trip --------------------------------------------------


async def roundtrip(face: Face, certs: Certs) -> None:
    """A wrapped client talks to the stdlib; every plain attribute answers."""
    for version in ("1.2", "1.3"):
        sctx = certs.server_ctx()
        for k, v in _versions(version).items():
            setattr(sctx, k, v)
        cctx = certs.client_ctx()
        with Peer(tls_server(sctx, echo)) as peer:
            s = await face.tls_connect(peer.address, cctx)
            try:
                assert isinstance(s, face.SSLSocket)
                assert s.version() == f"TLSv{version}"
                assert s.context is cctx
                assert s.server_side is False
                assert s.server_hostname == "localhost"
                assert s.cipher()[1] == f"TLSv{version}"
                assert s.compression() is None
                assert s.shared_ciphers() is None  # a client has none
                assert s.selected_alpn_protocol() is None
                assert s.pending() == 0
                assert dict(x[0] for x in s.getpeercert()["subject"]).get("organizationName")
                assert isinstance(s.getpeercert(binary_form=True), bytes)
                assert s.getpeername() == peer.address
                assert s.family == socket.AF_INET and s.type == socket.SOCK_STREAM
                assert s.fileno() >= 0 and s.gettimeout() == WAIT
                if version == "1.2":
                    assert isinstance(s.get_channel_binding("tls-unique"), bytes)
                assert await aw(s.send(b"hello ")) == 6
                assert await aw(s.sendall(b"world")) is None
                got = b""
                while len(got) < 11:
                    got += await aw(s.recv(64))
                assert got == b"hello world"
                buf = bytearray(8)
                await aw(s.sendall(b"12345"))
                n = await aw(s.recv_into(buf))
                assert buf[:n] == b"12345"[:n] and n > 0
            finally:
                s.close()
            assert s.fileno() == -1
            assert peer.join() >= 16


test_roundtrip, test_roundtrip_sync = twins(roundtrip)


async def pending_and_partial_reads(face: Face, certs: Certs) -> None:
    """A short recv leaves the record's rest in pending(); the next recv gets it."""
    with Peer(
        tls_server(certs.server_ctx(), lambda s: (s.sendall(b"abcdef"), read_all(s)))
    ) as peer:
        s = await face.tls_connect(peer.address, certs.client_ctx())
        with s:
            assert await aw(s.recv(2)) == b"ab"
            assert s.pending() == 4
            assert await aw(s.recv(100)) == b"cdef"
            assert s.pending() == 0
        peer.join()


test_pending, test_pending_sync = twins(pending_and_partial_reads)


async def server_side_wrap(face: Face, certs: Certs) -> None:
    """server_side=True: the handler's side; shared_ciphers and the client's certificate."""
    cctx = certs.client_ctx()
    certs.client.configure_cert(cctx)
    sctx = certs.server_ctx()
    sctx.verify_mode = ssl.CERT_REQUIRED
    certs.ca.configure_trust(sctx)

    def client(conn: socket.socket) -> bytes:
        with cctx.wrap_socket(conn, server_hostname="localhost") as c:
            c.sendall(b"ping")
            return c.recv(4)

    # The Peer listens; the face side connects, then plays the TLS server.
    with Peer(client) as peer:
        raw = await face.connect(peer.address)
        s = await face.wrap(raw, sctx, server_side=True)
        with s:
            assert raw.fileno() == -1  # detached, as the stdlib's wrap detaches
            assert s.server_side is True and s.server_hostname is None
            assert s.shared_ciphers()
            assert s.getpeercert()["subject"]
            assert await aw(s.recv(4)) == b"ping"
            await aw(s.sendall(b"pong"))
        assert peer.join() == b"pong"


test_server_side, test_server_side_sync = twins(server_side_wrap)


async def wrap_argument_errors(face: Face, certs: Certs) -> None:
    """wrap_socket's argument checks are the stdlib's (type, message), sock left open."""
    with Peer(lambda conn: conn.recv(1)) as peer:
        raw = await face.connect(peer.address)
        with raw:
            for kwargs, exc, msg in [
                (
                    {"server_side": True, "server_hostname": "x"},
                    ValueError,
                    "server_hostname can only be specified in client mode",
                ),
                (
                    {"server_side": True, "session": object()},
                    ValueError,
                    "session can only be specified in client mode",
                ),
                ({}, ValueError, "check_hostname requires server_hostname"),
            ]:
                with pytest.raises(exc) as info:
                    await face.wrap(raw, certs.client_ctx(), **kwargs)
                assert str(info.value) == msg
                assert raw.fileno() >= 0  # not taken over when the wrap is refused
            raw.settimeout(0.0)
            with pytest.raises(ValueError) as info:
                await face.wrap(raw, certs.client_ctx(), server_hostname="localhost")
            assert str(info.value) == (
                "do_handshake_on_connect should not be specified for non-blocking sockets"
            )
        peer.join(check=False)
    udp = face.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with udp, pytest.raises(NotImplementedError, match="only stream sockets are supported"):
        await face.wrap(udp, certs.client_ctx(), server_hostname="localhost")


test_wrap_errors, test_wrap_errors_sync = twins(wrap_argument_errors)


async def handshake_later(face: Face, certs: Certs) -> None:
    """do_handshake_on_connect=False: do_handshake() in each mode (non-blocking: SSLWant*)."""
    go = threading.Event()

    def script(conn: socket.socket) -> int:
        go.wait(WAIT)  # silent until the non-blocking attempt has been made
        with certs.server_ctx().wrap_socket(conn, server_side=True) as s:
            return echo(s)

    with Peer(script) as peer:
        raw = await face.connect(peer.address)
        s = await face.wrap(
            raw, certs.client_ctx(), server_hostname="localhost", do_handshake_on_connect=False
        )
        with s:
            assert s.version() is None and s.cipher() is None
            s.settimeout(0.0)
            with pytest.raises(ssl.SSLWantReadError):
                await aw(s.do_handshake())
            go.set()
            s.settimeout(WAIT)
            await aw(s.do_handshake())
            assert s.version() is not None
            await aw(s.sendall(b"x"))
            assert await aw(s.recv(1)) == b"x"
        peer.join()


test_handshake_later, test_handshake_later_sync = twins(handshake_later)


# -- modes -----------------------------------------------------------------------------


async def modes(face: Face, certs: Certs) -> None:
    """Non-blocking: SSLWantReadError; timeout: the stdlib's TimeoutError messages."""
    stop = []

    def quiet(s: ssl.SSLSocket) -> None:
        s.settimeout(WAIT)
        read_all(s)
        stop.append(1)

    with Peer(tls_server(certs.server_ctx(), quiet)) as peer:
        s = await face.tls_connect(peer.address, certs.client_ctx())
        with s:
            s.setblocking(False)
            assert s.getblocking() is False and s.gettimeout() == 0.0
            with pytest.raises(ssl.SSLWantReadError) as wr:
                await aw(s.recv(10))
            assert wr.value.errno == ssl.SSL_ERROR_WANT_READ
            with pytest.raises(ssl.SSLWantReadError):
                await aw(s.recv_into(bytearray(10)))
            s.settimeout(0.05)
            with pytest.raises(TimeoutError) as te:
                await aw(s.recv(10))
            assert str(te.value) == "The read operation timed out"
            with pytest.raises(TimeoutError) as te:
                await aw(s.recv_into(bytearray(10)))
            assert str(te.value) == "The read operation timed out"
            s.setblocking(True)
            assert s.gettimeout() is None
        peer.join()


test_modes, test_modes_sync = twins(modes)


async def sendall_deadline_covers_call(face: Face, certs: Certs) -> None:
    """A peer that never reads: timeout-mode sendall raises the stdlib's write timeout."""
    release: list[int] = []

    def stall(s: ssl.SSLSocket) -> None:
        import time

        deadline = time.monotonic() + WAIT
        while not release and time.monotonic() < deadline:
            time.sleep(0.01)

    with Peer(tls_server(certs.server_ctx(), stall)) as peer:
        s = await face.tls_connect(peer.address, certs.client_ctx())
        with s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
            s.settimeout(0.2)
            with pytest.raises(TimeoutError) as te:
                await aw(s.sendall(b"x" * (16 << 20)))
            assert str(te.value) == "The write operation timed out"
            s.settimeout(0.0)
            with pytest.raises(ssl.SSLWantWriteError):
                for _ in range(10_000):
                    await aw(s.send(b"y" * 65536))
        release.append(1)
        peer.join()


test_sendall_deadline, test_sendall_deadline_sync = twins(sendall_deadline_covers_call)


async def handshake_timeout(face: Face, certs: Certs) -> None:
    """A server that never answers: the handshake times out with the stdlib's message."""

    def silent(conn: socket.socket) -> None:
        conn.recv(65536)  # the ClientHello, never answered
        conn.recv(1)

    with Peer(silent) as peer:
        raw = await face.connect(peer.address, timeout=0.2)
        with pytest.raises(TimeoutError) as te:
            await face.wrap(raw, certs.client_ctx(), server_hostname="localhost")
        assert str(te.value) == "The handshake operation timed out"
        assert raw.fileno() == -1
    peer.join(check=False)


test_handshake_timeout, test_handshake_timeout_sync = twins(handshake_timeout)


# -- EOFs, unwrap, STARTTLS ------------------------------------------------------------


async def ragged_eof(face: Face, certs: Certs) -> None:
    """A peer that closes TCP without close_notify: b"" or SSLEOFError, as the stdlib."""
    for suppress in (True, False):

        def ragged(conn: socket.socket) -> None:
            s = certs.server_ctx().wrap_socket(conn, server_side=True)
            s.sendall(b"last")
            s.close()  # the stdlib's close sends no close_notify: a ragged EOF

        with Peer(ragged) as peer:
            s = await face.tls_connect(
                peer.address, certs.client_ctx(), suppress_ragged_eofs=suppress
            )
            with s:
                got = b""
                while len(got) < 4:
                    got += await aw(s.recv(4))
                assert got == b"last"
                peer.join()
                if suppress:
                    assert await aw(s.recv(10)) == b""
                    assert await aw(s.recv_into(bytearray(10))) == 0
                else:
                    with pytest.raises(ssl.SSLEOFError):
                        await aw(s.recv(10))


test_ragged_eof, test_ragged_eof_sync = twins(ragged_eof)


async def clean_eof(face: Face, certs: Certs) -> None:
    """close_notify from the peer: b"" on every later recv (suppress or not)."""

    def notify(s: ssl.SSLSocket) -> None:
        s.sendall(b"bye")
        s.unwrap()

    with Peer(tls_server(certs.server_ctx(), notify)) as peer:
        s = await face.tls_connect(peer.address, certs.client_ctx(), suppress_ragged_eofs=False)
        with s:
            got = b""
            while len(got) < 3:
                got += await aw(s.recv(10))
            assert got == b"bye"
            assert await aw(s.recv(10)) == b""
            assert await aw(s.recv(10)) == b""
        peer.join(check=False)


test_clean_eof, test_clean_eof_sync = twins(clean_eof)


async def recv_exactly(sock: Any, n: int) -> bytes:
    """``n`` bytes from ``sock`` (either face), by as many ``recv`` calls as it takes."""
    got = b""
    while len(got) < n:
        data = await aw(sock.recv(n - len(got)))
        assert data, "EOF before the end"
        got += data
    return got


async def starttls_and_back(face: Face, certs: Certs) -> None:
    """Plain, then TLS, then unwrap() back to plain: nothing lost on either side."""

    def script(conn: socket.socket) -> bytes:
        assert conn.recv(9) == b"STARTTLS\n"
        conn.sendall(b"GO\n")
        s = certs.server_ctx().wrap_socket(conn, server_side=True)
        data = s.recv(6)
        s.sendall(b"secret reply")
        plain = s.unwrap()
        plain.sendall(b"plain again")
        rest = plain.recv(5)
        plain.close()
        return data + rest

    with Peer(script) as peer:
        raw = await face.connect(peer.address)
        await aw(raw.sendall(b"STARTTLS\n"))
        assert await aw(raw.recv(3)) == b"GO\n"
        s = await face.wrap(raw, certs.client_ctx(), server_hostname="localhost")
        await aw(s.sendall(b"secret"))
        got = b""
        while len(got) < 12:
            got += await aw(s.recv(12 - len(got)))
        assert got == b"secret reply"
        plain = await aw(s.unwrap())
        assert s.fileno() == -1
        with plain:
            assert isinstance(plain, face.mod.socket)
            assert not isinstance(plain, face.SSLSocket)
            assert plain.gettimeout() == WAIT
            assert await recv_exactly(plain, 11) == b"plain again"
            await aw(plain.sendall(b"12345"))
        assert peer.join() == b"secret12345"


test_starttls, test_starttls_sync = twins(starttls_and_back)


def _bio_server(
    conn: socket.socket, ctx: ssl.SSLContext
) -> tuple[ssl.SSLObject, Any, ssl.MemoryBIO]:
    """A server-side ``SSLObject`` on ``conn`` (blocking), handshake done; a function
    that runs one of its calls, moving the ciphertext; its outgoing BIO."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_side=True)

    def run(fn: Any, *args: Any) -> Any:
        while True:
            try:
                return fn(*args)
            except ssl.SSLWantReadError:
                conn.sendall(outgoing.read())
                data = conn.recv(65536)
                if not data:
                    incoming.write_eof()
                else:
                    incoming.write(data)
            finally:
                if outgoing.pending:
                    conn.sendall(outgoing.read())

    run(obj.do_handshake)
    return obj, run, outgoing


async def unwrap_keeps_what_follows(face: Face, certs: Certs) -> None:
    """This end starts ``unwrap()``; the peer answers close_notify and sends plaintext
    in the same segment: the plaintext is the plain socket's (unwrap takes from the
    descriptor only what TLS used)."""

    def script(conn: socket.socket) -> bytes:
        obj, run, outgoing = _bio_server(conn, certs.server_ctx())
        assert run(obj.read, 10) == b"hello"
        assert run(obj.read, 10) == b""  # this end's close_notify
        try:
            obj.unwrap()  # answers it (into the BIO): then both go in one write
        except ssl.SSLWantReadError:
            pass
        conn.sendall(outgoing.read() + b"plain")
        rest = conn.recv(5)
        conn.close()
        return rest

    with Peer(script) as peer:
        s = await face.tls_connect(peer.address, certs.client_ctx())
        await aw(s.sendall(b"hello"))
        plain = await aw(s.unwrap())
        with plain:
            assert await recv_exactly(plain, 5) == b"plain"
            await aw(plain.sendall(b"after"))
        assert peer.join() == b"after"


test_unwrap_keeps_what_follows, test_unwrap_keeps_what_follows_sync = twins(
    unwrap_keeps_what_follows
)


async def recv_into_takes_several_records(face: Face, certs: Certs) -> None:
    """``recv_into`` a large buffer returns the plaintext of every record already
    received (the stdlib's: one 16 KiB record per call), bytes exact and in order."""
    data = bytes(range(256)) * 1024  # 256 KiB: 16 records

    def script(s: ssl.SSLSocket) -> None:
        s.sendall(data)
        s.recv(1)

    with Peer(tls_server(certs.server_ctx(), script)) as peer:
        s = await face.tls_connect(peer.address, certs.client_ctx())
        with s:
            buf = bytearray(len(data))
            view = memoryview(buf)
            got = sizes = 0
            while got < len(data):
                time.sleep(0.05)  # let the records arrive (the peer is a thread)
                n = await aw(s.recv_into(view[got:]))
                assert n
                got += n
                sizes = max(sizes, n)
            assert buf == data
            assert sizes > 16384
            await aw(s.sendall(b"k"))
        peer.join()


test_recv_into_takes_several_records, test_recv_into_takes_several_records_sync = twins(
    recv_into_takes_several_records
)


async def recv_into_after_shutdown(face: Face, certs: Certs) -> None:
    """``shutdown()`` drops TLS, as the stdlib's (its ``recv_into`` then reads the raw
    stream); with ciphertext already read ahead, ``recv_into`` still just reads."""

    def script(s: ssl.SSLSocket) -> None:
        s.sendall(b"x" * 100_000)
        s.recv(1)

    with Peer(tls_server(certs.server_ctx(), script)) as peer:
        s = await face.tls_connect(peer.address, certs.client_ctx())
        with s:
            time.sleep(0.05)  # let the records arrive
            assert await aw(s.recv(10)) == b"x" * 10  # one record read, more ahead
            s.shutdown(socket.SHUT_WR)
            assert isinstance(await aw(s.recv_into(bytearray(100))), int)
        peer.join(check=False)


test_recv_into_after_shutdown, test_recv_into_after_shutdown_sync = twins(recv_into_after_shutdown)


async def unwrap_bounded(face: Face, certs: Certs) -> None:
    """A peer that never answers close_notify: unwrap() obeys the mode, close() never hangs."""
    release: list[int] = []

    def deaf(s: ssl.SSLSocket) -> None:
        import time

        deadline = time.monotonic() + WAIT
        while not release and time.monotonic() < deadline:
            time.sleep(0.01)

    with Peer(tls_server(certs.server_ctx(), deaf)) as peer:
        s = await face.tls_connect(peer.address, certs.client_ctx())
        s.settimeout(0.1)
        with pytest.raises(TimeoutError) as te:
            await aw(s.unwrap())
        assert str(te.value) == "The read operation timed out"
        s.settimeout(0.0)
        with pytest.raises(ssl.SSLWantReadError):
            await aw(s.unwrap())
        s.close()  # never blocks, sends nothing
        assert s.fileno() == -1
        release.append(1)
        peer.join()


test_unwrap_bounded, test_unwrap_bounded_sync = twins(unwrap_bounded)


# -- what TLS does not allow; closed sockets -------------------------------------------


async def refused_calls(face: Face, certs: Certs) -> None:
    """Flags, recvfrom/sendto/recvmsg/sendmsg, dup: the stdlib's exception and message."""
    with Peer(tls_server(certs.server_ctx(), echo)) as peer:
        s = await face.tls_connect(peer.address, certs.client_ctx())
        with s:
            for call, exc, text in [
                (
                    lambda: s.recv(1, socket.MSG_PEEK),
                    ValueError,
                    "non-zero flags not allowed in calls to recv() on",
                ),
                (
                    lambda: s.recv_into(bytearray(1), 1, socket.MSG_PEEK),
                    ValueError,
                    "non-zero flags not allowed in calls to recv_into() on",
                ),
                (
                    lambda: s.send(b"x", socket.MSG_DONTWAIT),
                    ValueError,
                    "non-zero flags not allowed in calls to send() on",
                ),
                (
                    lambda: s.sendall(b"x", socket.MSG_DONTWAIT),
                    ValueError,
                    "non-zero flags not allowed in calls to sendall() on",
                ),
                (lambda: s.recvfrom(1), ValueError, "recvfrom not allowed on instances of"),
                (
                    lambda: s.recvfrom_into(bytearray(1)),
                    ValueError,
                    "recvfrom_into not allowed on instances of",
                ),
                (
                    lambda: s.sendto(b"x", (HOST, 9)),
                    ValueError,
                    "sendto not allowed on instances of",
                ),
                (lambda: s.recvmsg(1), NotImplementedError, "recvmsg not allowed on instances of"),
                (
                    lambda: s.recvmsg_into([bytearray(1)]),
                    NotImplementedError,
                    "recvmsg_into not allowed on instances of",
                ),
                (
                    lambda: s.sendmsg([b"x"]),
                    NotImplementedError,
                    "sendmsg not allowed on instances of",
                ),
            ]:
                with pytest.raises(exc) as info:
                    await aw(call())
                assert str(info.value).startswith(text), (str(info.value), text)
            with pytest.raises(NotImplementedError, match="Can't dup"):
                s.dup()
            # still usable
            await aw(s.sendall(b"ok"))
            assert await aw(s.recv(2)) == b"ok"
        peer.join()


test_refused_calls, test_refused_calls_sync = twins(refused_calls)


async def closed_socket(face: Face, certs: Certs) -> None:
    """After close(): I/O raises OSError(EBADF); the info calls answer as the stdlib's."""
    with Peer(tls_server(certs.server_ctx(), echo)) as peer:
        s = await face.tls_connect(peer.address, certs.client_ctx())
        s.close()
        s.close()  # twice is fine
        for call in (
            lambda: s.recv(1),
            lambda: s.send(b"x"),
            lambda: s.sendall(b"x"),
            lambda: s.recv_into(bytearray(1)),
            lambda: s.do_handshake(),
        ):
            with pytest.raises(OSError) as info:
                await aw(call())
            assert info.value.errno == errno.EBADF
        assert s.fileno() == -1
        assert s.cipher() is None and s.version() is None and s.pending() == 0
        assert s.selected_alpn_protocol() is None
        with pytest.raises(ValueError, match="No SSL wrapper around"):
            await aw(s.unwrap())
        peer.join()


test_closed, test_closed_sync = twins(closed_socket)


# -- certificates ----------------------------------------------------------------------


async def verification_failures(face: Face, certs: Certs) -> None:
    """Wrong host, unknown CA, expired: SSLCertVerificationError; the fd is closed."""
    cases = [
        (certs.server, "wronghost.test", "Hostname mismatch"),
        (certs.other, "localhost", "unable to get local issuer certificate"),
        (certs.expired, "localhost", "certificate has expired"),
    ]
    for leaf, hostname, text in cases:

        def script(conn: socket.socket, leaf: Any = leaf) -> None:
            try:
                certs.server_ctx(leaf).wrap_socket(conn, server_side=True)
            except (ssl.SSLError, OSError):
                pass

        with Peer(script) as peer:
            raw = await face.connect(peer.address)
            with pytest.raises(ssl.SSLCertVerificationError) as info:
                await face.wrap(raw, certs.client_ctx(), server_hostname=hostname)
            assert text in str(info.value), info.value
            assert info.value.verify_message
            assert raw.fileno() == -1
            peer.join()


test_verification, test_verification_sync = twins(verification_failures)


async def mutual_tls(face: Face, certs: Certs) -> None:
    """A server that requires a client certificate: with one it works, without it fails."""
    sctx = certs.server_ctx()
    sctx.verify_mode = ssl.CERT_REQUIRED
    certs.ca.configure_trust(sctx)
    sctx.maximum_version = ssl.TLSVersion.TLSv1_2  # the failure surfaces in the handshake

    def check(s: ssl.SSLSocket) -> Any:
        s.sendall(b"ok")
        return dict(x[0] for x in s.getpeercert()["subject"])["commonName"]

    cctx = certs.client_ctx()
    certs.client.configure_cert(cctx)
    with Peer(tls_server(sctx, check)) as peer:
        s = await face.tls_connect(peer.address, cctx)
        with s:
            assert await aw(s.recv(2)) == b"ok"
        assert peer.join() == "client"
    with Peer(tls_server(sctx, check)) as peer:
        raw = await face.connect(peer.address)
        with pytest.raises(ssl.SSLError):
            await face.wrap(raw, certs.client_ctx(), server_hostname="localhost")
        peer.join(check=False)
        assert isinstance(peer.error, ssl.SSLError)


test_mutual_tls, test_mutual_tls_sync = twins(mutual_tls)


async def sni_and_alpn(face: Face, certs: Certs) -> None:
    """The server sees server_hostname (SNI); ALPN picks the protocol both speak."""
    seen: list[str | None] = []
    sctx = certs.server_ctx()
    sctx.set_alpn_protocols(["h2", "http/1.1"])
    sctx.sni_callback = lambda sslobj, name, ctx: seen.append(name)  # type: ignore[assignment,func-returns-value]
    cctx = certs.client_ctx()
    cctx.set_alpn_protocols(["http/1.1"])
    with Peer(tls_server(sctx, lambda s: s.selected_alpn_protocol())) as peer:
        s = await face.tls_connect(peer.address, cctx)
        with s:
            assert s.selected_alpn_protocol() == "http/1.1"
        assert peer.join() == "http/1.1"
    assert seen == ["localhost"]


test_sni_alpn, test_sni_alpn_sync = twins(sni_and_alpn)


async def session_resumption(face: Face, certs: Certs) -> None:
    """A session from one connection resumes the next (TLS 1.2 and 1.3)."""
    for version in ("1.2", "1.3"):
        sctx = certs.server_ctx()
        cctx = certs.client_ctx()
        for k, v in _versions(version).items():
            setattr(cctx, k, v)

        def serve(s: ssl.SSLSocket) -> bool:
            s.sendall(b"t")  # TLS 1.3: the ticket arrives before this byte
            read_all(s)
            return s.session_reused

        with Peer(tls_server(sctx, serve)) as peer:
            s = await face.tls_connect(peer.address, cctx)
            with s:
                assert await aw(s.recv(1)) == b"t"
                session = s.session
                assert session is not None and s.session_reused is False
            assert peer.join() is False
        with Peer(tls_server(sctx, serve)) as peer:
            s = await face.tls_connect(peer.address, cctx, session=session)
            with s:
                assert await aw(s.recv(1)) == b"t"
                assert s.session_reused is True
            assert peer.join() is True


test_session_resumption, test_session_resumption_sync = twins(session_resumption)


# -- sendfile, bigger transfers --------------------------------------------------------


async def sendfile(face: Face, certs: Certs) -> None:
    """sendfile() through TLS: offset and count as the stdlib's, the file position moved."""
    data = os.urandom(300_000)
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.seek(0)
        with Peer(tls_server(certs.server_ctx(), read_n(len(data) - 1000))) as peer:
            s = await face.tls_connect(peer.address, certs.client_ctx())
            with s:
                assert await aw(s.sendfile(f, 1000, 200_000)) == 200_000
                assert f.tell() == 201_000
                assert await aw(s.sendfile(f)) == len(data) - 201_000
                assert await aw(s.recv(1)) == b"k"
            assert peer.join() == data[1000:201_000] + data[201_000:]


test_sendfile, test_sendfile_sync = twins(sendfile)


async def echo_hashed(face: Face, certs: Certs) -> None:
    """8 MiB echoed through the stdlib peer, checked by hash."""
    blob = os.urandom(1 << 20)
    with Peer(tls_server(certs.server_ctx(), read_n(8 * len(blob)))) as peer:
        s = await face.tls_connect(peer.address, certs.client_ctx())
        with s:
            for _ in range(8):
                await aw(s.sendall(blob))
            assert await aw(s.recv(1)) == b"k"
        assert hashlib.sha256(peer.join()).digest() == hashlib.sha256(blob * 8).digest()


test_echo_hashed, test_echo_hashed_sync = twins(echo_hashed)


def test_makefile_sync(certs: Certs) -> None:
    """asocket.sync.SSLSocket.makefile(): buffered lines through TLS, as the stdlib's."""
    import asocket.sync

    def lines(s: ssl.SSLSocket) -> None:
        f = s.makefile("rwb")
        for line in f:
            f.write(line.upper())
            f.flush()
        f.close()

    with Peer(tls_server(certs.server_ctx(), lines)) as peer:
        with asocket.sync.create_connection(
            peer.address, timeout=WAIT, ssl=certs.client_ctx(), server_hostname="localhost"
        ) as s:
            f = s.makefile("rwb")
            f.write(b"one\ntwo\n")
            f.flush()
            assert f.readline() == b"ONE\n"
            assert f.readline() == b"TWO\n"
            f.close()
        peer.join()


async def connect_after_wrap(face: Face, certs: Certs) -> None:
    """Wrapped unconnected, then connect(): connected and handshaken, as the stdlib's."""
    for handshake in (True, False):
        with Peer(tls_server(certs.server_ctx(), echo)) as peer:
            raw = face.socket(socket.AF_INET, socket.SOCK_STREAM)
            raw.settimeout(WAIT)
            s = await face.wrap(
                raw,
                certs.client_ctx(),
                server_hostname="localhost",
                do_handshake_on_connect=handshake,
            )
            with s:
                assert s.do_handshake_on_connect is handshake
                assert await aw(s.connect_ex(peer.address)) == 0
                assert (s.version() is not None) is handshake
                if not handshake:
                    await aw(s.do_handshake())
                await aw(s.sendall(b"abc"))
                assert await aw(s.recv(3)) == b"abc"
                with pytest.raises(ValueError, match="already-connected"):
                    await aw(s.connect(peer.address))
            peer.join()


test_connect_after_wrap, test_connect_after_wrap_sync = twins(connect_after_wrap)


async def accept_on_tls_listener(face: Face, certs: Certs) -> None:
    """accept() on a wrapped listening socket wraps the connection, handshake done."""
    lst = face.socket(socket.AF_INET, socket.SOCK_STREAM)
    await aw(lst.bind((HOST, 0)))
    lst.listen()
    lst.settimeout(WAIT)
    tls_lst = await face.wrap(lst, certs.server_ctx(), server_side=True)
    got: list[bytes] = []

    def client() -> None:
        raw = socket.create_connection(tls_lst.getsockname(), timeout=WAIT)
        with certs.client_ctx().wrap_socket(raw, server_hostname="localhost") as c:
            c.sendall(b"hello")
            got.append(c.recv(5))

    t = threading.Thread(target=client)
    t.start()
    with tls_lst:
        conn, _ = await aw(tls_lst.accept())
        with conn:
            assert isinstance(conn, face.SSLSocket) and conn.server_side
            assert conn.version() is not None
            data = b""
            while len(data) < 5:
                data += await aw(conn.recv(5))
            await aw(conn.sendall(data.upper()))
            t.join(WAIT)
    assert got == [b"HELLO"]


test_accept_on_tls_listener, test_accept_on_tls_listener_sync = twins(accept_on_tls_listener)


@pytest.mark.parametrize("mod", ["asocket", "asocket.sync"])
def test_no_public_constructor(mod: str) -> None:
    import importlib

    cls = importlib.import_module(mod).SSLSocket
    with pytest.raises(TypeError, match="does not have a public constructor"):
        cls()
    assert cls.__name__ == "SSLSocket" and cls.__module__ == mod


@pytest.mark.anyio
async def test_makefile_async(certs: Certs) -> None:
    """asocket.SSLSocket.makefile(): the awaitable buffered file works through TLS;
    non-blocking mode raises BlockingIOError there, as on plain sockets (API.md)."""

    def lines(s: ssl.SSLSocket) -> None:
        f = s.makefile("rwb")
        for line in f:
            f.write(line.upper())
            f.flush()
        f.close()

    with Peer(tls_server(certs.server_ctx(), lines)) as peer:
        s = await asocket.create_connection(peer.address, timeout=WAIT, ssl=certs.client_ctx())
        async with s:
            f = s.makefile("rwb")
            await f.write(b"one\ntwo\n")
            await f.flush()
            assert await f.readline() == b"ONE\n"
            assert await f.readexactly(4) == b"TWO\n"
            s.settimeout(0.0)
            with pytest.raises(BlockingIOError):
                await f.readline()
            f.close()
        peer.join(check=False)
