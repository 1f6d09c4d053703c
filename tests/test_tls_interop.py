"""TLS against peers nobody here wrote: openssl s_server/s_client, asyncio streams,
the stdlib's SSLSocket; and misbehaving peers (closing mid-handshake, garbage).

``openssl`` runs as a subprocess on 127.0.0.1 (port parsed from its output),
bounded and killed by PID. Async tests run on every backend (the loop matrix and
trio: see ``conftest.py``), except those with asyncio's streams as the peer (the
loop matrix); the sync face has a twin where the scenario applies.
"""

from __future__ import annotations

import asyncio
import functools
import io
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from _async_helpers import Tasks, bounded
from _tls_helpers import (
    HOST,
    OPENSSL,
    WAIT,
    Certs,
    Face,
    OpenSSLServer,
    Peer,
    aw,
    certs_fixture,  # noqa: F401  (fixture "certs")
    requires_tls,
    s_client,
    twins,
)

import asocket
import asocket.sync

requires_tls()

needs_openssl = pytest.mark.skipif(
    shutil.which(OPENSSL) is None, reason="the openssl command is not installed"
)
VERSIONS = {"1.2": "-tls1_2", "1.3": "-tls1_3"}


# -- asocket client -> openssl s_server ------------------------------------------------


async def client_to_s_server(face: Face, certs: Certs) -> None:
    """TLS 1.2 and 1.3, ALPN, mutual TLS: a line reversed by ``s_server -rev``."""
    for version, flag in VERSIONS.items():
        for feature in ("plain", "alpn", "mtls"):
            args = [flag, "-rev"]
            cctx = certs.client_ctx()
            if feature == "alpn":
                args += ["-alpn", "h2,http/1.1"]
                cctx.set_alpn_protocols(["http/1.1"])
            if feature == "mtls":
                args += ["-Verify", "1", "-CAfile", certs.cafile, "-verify_return_error"]
                certs.client.configure_cert(cctx)
            with OpenSSLServer(certs, *args) as srv:
                s = await face.tls_connect(srv.address, cctx)
                with s:
                    assert s.version() == f"TLSv{version}", (version, feature)
                    if feature == "alpn":
                        assert s.selected_alpn_protocol() == "http/1.1"
                    await aw(s.sendall(b"hello asocket\n"))
                    got = b""
                    while not got.endswith(b"\n"):
                        data = await aw(s.recv(100))
                        assert data, (version, feature, srv.output)
                        got += data
                    assert got == b"tekcosa olleh\n"


test_client_to_s_server, test_client_to_s_server_sync = twins(
    client_to_s_server, every_backend=True
)
test_client_to_s_server = needs_openssl(test_client_to_s_server)
test_client_to_s_server_sync = needs_openssl(test_client_to_s_server_sync)


async def client_rejects_s_server(face: Face, certs: Certs) -> None:
    """An s_server certificate for another name: SSLCertVerificationError."""
    with OpenSSLServer(certs) as srv:
        raw = await face.connect(srv.address)
        with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
            await face.wrap(raw, certs.client_ctx(), server_hostname="other.test")


test_client_rejects, test_client_rejects_sync = twins(client_rejects_s_server, every_backend=True)
test_client_rejects = needs_openssl(test_client_rejects)
test_client_rejects_sync = needs_openssl(test_client_rejects_sync)


# -- openssl s_client -> asocket server ------------------------------------------------


def _server_ctx(certs: Certs, version: str, feature: str, seen: list[Any]) -> ssl.SSLContext:
    sctx = certs.server_ctx()
    v = ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2
    sctx.minimum_version = sctx.maximum_version = v

    def sni(obj: ssl.SSLObject, name: str | None, ctx: ssl.SSLContext) -> None:
        seen.append(name)

    sctx.sni_callback = sni
    if feature == "alpn":
        sctx.set_alpn_protocols(["x-asocket", "http/1.1"])
    if feature == "mtls":
        sctx.verify_mode = ssl.CERT_REQUIRED
        certs.ca.configure_trust(sctx)
    return sctx


def _s_client_args(certs: Certs, version: str, feature: str) -> list[str]:
    args = [VERSIONS[version], "-servername", "localhost", "-quiet"]
    if feature == "alpn":
        args += ["-alpn", "x-asocket"]
    if feature == "mtls":
        args += ["-cert", certs.client_certfile]
    return args


@needs_openssl
@pytest.mark.anyio
@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("feature", ["plain", "alpn", "mtls"])
async def test_s_client_to_server(certs: Certs, version: str, feature: str) -> None:
    """s_client sends a line; the asocket server (wrap_socket, server side) echoes it."""
    seen: list[Any] = []
    sctx = _server_ctx(certs, version, feature, seen)
    info: dict[str, Any] = {}
    lst = await asocket.create_server((HOST, 0))

    async def serve() -> None:
        conn, _ = await lst.accept()
        conn.settimeout(WAIT)
        s = await asocket.wrap_socket(conn, sctx, server_side=True)
        with s:
            info["alpn"] = s.selected_alpn_protocol()
            info["version"] = s.version()
            info["peercert"] = s.getpeercert()
            line = b""
            while not line.endswith(b"\n"):
                line += await s.recv(100)
            await s.sendall(b"echo: " + line)

    async with lst, Tasks() as tasks:
        task = tasks.spawn(serve())
        run = functools.partial(
            s_client,
            lst.getsockname(),
            certs,
            *_s_client_args(certs, version, feature),
            stdin=b"hi there\n",
        )
        proc = await bounded(anyio.to_thread.run_sync(run), 2 * WAIT)
        await task.join(WAIT)
    assert b"echo: hi there\n" in proc.stdout, proc.stderr
    assert seen == ["localhost"]
    assert info["version"] == f"TLSv{version}"
    assert info["alpn"] == ("x-asocket" if feature == "alpn" else None)
    assert bool(info["peercert"]) == (feature == "mtls")


@needs_openssl
@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("feature", ["plain", "alpn", "mtls"])
def test_s_client_to_server_sync(certs: Certs, version: str, feature: str) -> None:
    """The same against the sync face (the server in a thread)."""
    seen: list[Any] = []
    sctx = _server_ctx(certs, version, feature, seen)
    info: dict[str, Any] = {}
    lst = asocket.sync.create_server((HOST, 0))

    def serve() -> None:
        conn, _ = lst.accept()
        conn.settimeout(WAIT)
        with asocket.sync.wrap_socket(conn, sctx, server_side=True) as s:
            info["alpn"] = s.selected_alpn_protocol()
            line = b""
            while not line.endswith(b"\n"):
                line += s.recv(100)
            s.sendall(b"echo: " + line)

    with lst:
        lst.settimeout(WAIT)
        t = threading.Thread(target=serve)
        t.start()
        proc = s_client(
            lst.getsockname(), certs, *_s_client_args(certs, version, feature), stdin=b"hi there\n"
        )
        t.join(WAIT)
    assert b"echo: hi there\n" in proc.stdout, proc.stderr
    assert seen == ["localhost"]
    assert info["alpn"] == ("x-asocket" if feature == "alpn" else None)


@needs_openssl
@pytest.mark.anyio
async def test_s_client_key_update(certs: Certs) -> None:
    """TLS 1.3 KeyUpdate (s_client's ``K`` command, update requested) mid-stream."""
    lst = await asocket.create_server((HOST, 0))
    lines: list[bytes] = []

    async def serve() -> None:
        conn, _ = await lst.accept()
        conn.settimeout(WAIT)
        s = await asocket.wrap_socket(conn, certs.server_ctx(), server_side=True)
        with s:
            buf = b""
            while len(lines) < 2:
                data = await s.recv(100)
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    lines.append(line)
                    await s.sendall(b"got " + line + b"\n")

    async with lst, Tasks() as tasks:
        task = tasks.spawn(serve())
        port = lst.getsockname()[1]
        proc = subprocess.Popen(
            [
                OPENSSL,
                "s_client",
                "-connect",
                f"{HOST}:{port}",
                "-CAfile",
                certs.cafile,
                "-tls1_3",
                "-quiet",
                "-no_ign_eof",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        errors: list[bytes] = []
        err_reader = threading.Thread(
            target=lambda: errors.extend(iter(proc.stderr.readline, b"")),  # type: ignore[union-attr]
            daemon=True,
        )
        err_reader.start()
        try:
            assert proc.stdin is not None and isinstance(proc.stdout, io.BufferedReader)
            stdout = proc.stdout
            out = b""

            async def expect(text: bytes) -> None:
                nonlocal out
                while text not in out:
                    # abandoned if the bound passes (the finally kills s_client)
                    read = anyio.to_thread.run_sync(stdout.read1, 1000, abandon_on_cancel=True)
                    chunk = await bounded(read, WAIT)
                    assert chunk, out
                    out += chunk

            proc.stdin.write(b"one\n")
            proc.stdin.flush()
            await expect(b"got one\n")
            proc.stdin.write(b"K\n")  # KeyUpdate, update_requested: the server must answer
            proc.stdin.flush()
            # s_client drops the rest of a stdin read after a command: send "two" only
            # once it has acted on the "K".
            for _ in range(int(WAIT / 0.01)):
                if b"KEYUPDATE" in b"".join(errors):
                    break
                await anyio.sleep(0.01)
            assert b"KEYUPDATE" in b"".join(errors)
            proc.stdin.write(b"two\n")
            proc.stdin.flush()
            await expect(b"got two\n")
            await task.join(WAIT)
        finally:
            proc.kill()
            proc.wait(WAIT)
            err_reader.join(WAIT)
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
    assert lines == [b"one", b"two"]


# -- asyncio streams -------------------------------------------------------------------


@pytest.mark.asyncio  # asyncio's streams as the peer: the loop matrix only
@pytest.mark.parametrize("version", ["1.2", "1.3"])
async def test_asyncio_start_server_peer(certs: Certs, version: str) -> None:
    """asocket client -> asyncio.start_server(ssl=...) on the same loop."""

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        data = await r.readexactly(5)
        w.write(data[::-1])
        await w.drain()
        w.close()

    sctx = certs.server_ctx()
    v = ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2
    sctx.minimum_version = sctx.maximum_version = v
    server = await asyncio.start_server(handle, HOST, 0, ssl=sctx)
    async with server:
        port = server.sockets[0].getsockname()[1]
        raw = await asocket.create_connection((HOST, port), timeout=WAIT)
        s = await asocket.wrap_socket(raw, certs.client_ctx(), server_hostname="localhost")
        with s:
            assert s.version() == f"TLSv{version}"
            await s.sendall(b"abcde")
            got = b""
            while len(got) < 5:
                data = await s.recv(5)
                assert data
                got += data
            assert got == b"edcba"
            assert await s.recv(5) == b""  # asyncio closes with close_notify (or ragged)


@pytest.mark.asyncio  # asyncio's streams as the peer: the loop matrix only
@pytest.mark.parametrize("version", ["1.2", "1.3"])
async def test_asyncio_open_connection_peer(certs: Certs, version: str) -> None:
    """asyncio.open_connection(ssl=...) -> an asocket server, both on one loop."""
    lst = await asocket.create_server((HOST, 0))
    sctx = certs.server_ctx()
    v = ssl.TLSVersion.TLSv1_3 if version == "1.3" else ssl.TLSVersion.TLSv1_2
    sctx.minimum_version = sctx.maximum_version = v

    async def serve() -> None:
        conn, _ = await lst.accept()
        conn.settimeout(WAIT)
        s = await asocket.wrap_socket(conn, sctx, server_side=True)
        with s:
            data = b""
            while len(data) < 5:
                data += await s.recv(5)
            await s.sendall(data.upper())
            plain = await s.unwrap()  # asyncio answers close_notify
            plain.close()

    with lst:
        task = asyncio.ensure_future(serve())
        r, w = await asyncio.open_connection(
            HOST, lst.getsockname()[1], ssl=certs.client_ctx(), server_hostname="localhost"
        )
        w.write(b"hello")
        assert await asyncio.wait_for(r.readexactly(5), WAIT) == b"HELLO"
        assert await asyncio.wait_for(r.read(), WAIT) == b""
        w.close()
        try:
            await asyncio.wait_for(w.wait_closed(), WAIT)
        except (ssl.SSLError, ConnectionError):
            pass
        await asyncio.wait_for(task, WAIT)


def test_asyncio_server_sync_client(certs: Certs) -> None:
    """asocket.sync client -> asyncio.start_server(ssl=...) on a loop in a thread."""
    ready = threading.Event()
    stop: list[Callable[[], Any]] = []
    port: list[int] = []

    async def main() -> None:
        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write((await r.readline()).upper())
            await w.drain()
            w.close()

        server = await asyncio.start_server(handle, HOST, 0, ssl=certs.server_ctx())
        port.append(server.sockets[0].getsockname()[1])
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        stop.append(lambda: loop.call_soon_threadsafe(done.set))
        ready.set()
        async with server:
            await asyncio.wait_for(done.wait(), WAIT * 2)

    t = threading.Thread(target=asyncio.run, args=(main(),))
    t.start()
    try:
        assert ready.wait(WAIT)
        with asocket.sync.create_connection(
            (HOST, port[0]), timeout=WAIT, ssl=certs.client_ctx(), server_hostname="localhost"
        ) as s:
            s.sendall(b"sync face\n")
            got = b""
            while not got.endswith(b"\n"):
                got += s.recv(100)
            assert got == b"SYNC FACE\n"
    finally:
        if stop:
            stop[0]()
        t.join(WAIT)


# -- misbehaving peers: the same error as the stdlib's ---------------------------------


def _stdlib_error(run: Callable[[], Any]) -> type[BaseException] | None:
    try:
        run()
    except BaseException as exc:
        return type(exc)
    return None


async def peer_closes_mid_handshake(face: Face, certs: Certs) -> None:
    """The server reads the ClientHello and closes: the same exception as the stdlib's."""

    def hang_up(conn: socket.socket) -> None:
        conn.recv(65536)

    def stdlib() -> None:
        with Peer(hang_up) as peer:
            raw = socket.create_connection(peer.address, timeout=WAIT)
            certs.client_ctx().wrap_socket(raw, server_hostname="localhost")

    expected = _stdlib_error(stdlib)
    assert expected is not None and issubclass(expected, OSError)
    with Peer(hang_up) as peer:
        raw = await face.connect(peer.address)
        with pytest.raises(OSError) as info:
            await face.wrap(raw, certs.client_ctx(), server_hostname="localhost")
        assert type(info.value) is expected
        assert raw.fileno() == -1


test_peer_closes_mid_handshake, test_peer_closes_mid_handshake_sync = twins(
    peer_closes_mid_handshake, every_backend=True
)


async def client_half_hello_then_close(face: Face, certs: Certs) -> None:
    """A client sends half a ClientHello and closes: the server side fails as the stdlib's."""
    hello = bytearray()

    def record_hello(conn: socket.socket) -> None:
        hello.extend(conn.recv(65536))

    with Peer(record_hello) as peer:  # capture one real ClientHello
        raw = socket.create_connection(peer.address, timeout=WAIT)
        try:
            certs.client_ctx().wrap_socket(raw, server_hostname="localhost")
        except OSError:
            pass
        finally:
            raw.close()
    assert hello

    for payload in (bytes(hello[: len(hello) // 2]), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"):

        def send_and_close(conn: socket.socket, payload: bytes = payload) -> None:
            conn.sendall(payload)

        def stdlib(send_and_close: Callable[[socket.socket], None] = send_and_close) -> None:
            lst = socket.create_server((HOST, 0))
            with lst:
                t = threading.Thread(target=lambda: _dial(lst.getsockname(), send_and_close))
                t.start()
                conn, _ = lst.accept()
                conn.settimeout(WAIT)
                try:
                    certs.server_ctx().wrap_socket(conn, server_side=True)
                finally:
                    conn.close()
                    t.join(WAIT)

        expected = _stdlib_error(stdlib)
        assert expected is not None and issubclass(expected, OSError)
        lst = face.socket(socket.AF_INET, socket.SOCK_STREAM)
        with lst:
            await aw(lst.bind((HOST, 0)))
            lst.listen()
            t = threading.Thread(target=_dial, args=(lst.getsockname(), send_and_close))
            t.start()
            lst.settimeout(WAIT)
            conn, _ = await aw(lst.accept())
            conn.settimeout(WAIT)
            with pytest.raises(OSError) as info:
                await face.wrap(conn, certs.server_ctx(), server_side=True)
            assert type(info.value) is expected, (payload[:10], info.value)
            assert conn.fileno() == -1
            t.join(WAIT)


def _dial(address: tuple[Any, ...], then: Callable[[socket.socket], None]) -> None:
    with socket.create_connection(address, timeout=WAIT) as c:
        then(c)


test_bad_client_hello, test_bad_client_hello_sync = twins(
    client_half_hello_then_close, every_backend=True
)
