"""One test body for every backend: asocket under anyio (asyncio, uvloop, the loop without
``add_reader``, trio), and ``asocket.anyio.wrap`` in anyio's stream ecosystem.

Backends: the ``anyio_backend`` fixture of conftest.py (anyio's pytest plugin).
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
import struct
from typing import Any

import pytest

anyio = pytest.importorskip("anyio")
trustme = pytest.importorskip("trustme")

from anyio.abc import SocketAttribute  # noqa: E402
from anyio.streams.buffered import BufferedByteReceiveStream  # noqa: E402
from anyio.streams.text import TextStream  # noqa: E402
from anyio.streams.tls import TLSListener, TLSStream  # noqa: E402

import asocket  # noqa: E402
import asocket.anyio  # noqa: E402

pytestmark = pytest.mark.anyio

WAIT = 5.0


async def listener() -> asocket.socket:
    lst = asocket.socket()
    await lst.bind(("127.0.0.1", 0))
    lst.listen()
    return lst


async def tcp_pair() -> tuple[asocket.socket, asocket.socket]:
    with await listener() as lst:
        cli = await asocket.create_connection(lst.getsockname(), timeout=WAIT)
        cli.settimeout(None)
        srv, _ = await lst.accept()
    return cli, srv


async def fill(sock: asocket.socket) -> int:
    sock.settimeout(0.0)
    total = 0
    for size in (65536, 4096, 1):
        while True:
            try:
                total += await sock.send(b"f" * size)
            except BlockingIOError:
                break
    sock.settimeout(None)
    return total


@pytest.fixture(scope="module")
def tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


# -- asocket's own semantics, the same on every backend ----------------------------------


async def test_modes_and_timeouts() -> None:
    a, b = asocket.socketpair()
    with a, b:
        a.setblocking(False)
        with pytest.raises(BlockingIOError):
            await a.recv(1)
        a.settimeout(0.05)
        with pytest.raises(TimeoutError, match=r"^timed out$"):
            await a.recv(1)
        a.settimeout(None)
        async with anyio.create_task_group() as tg:

            async def later() -> None:
                await anyio.sleep(0.01)
                await b.sendall(b"late")

            tg.start_soon(later)
            with anyio.fail_after(WAIT):
                assert await a.recv(10) == b"late"


async def test_several_waiters_and_close() -> None:
    a, b = asocket.socketpair()
    got: list[bytes] = []
    errors: list[int | None] = []
    with b:
        async with anyio.create_task_group() as tg:

            async def reader() -> None:
                try:
                    got.append(await a.recv(1))
                except OSError as exc:
                    errors.append(exc.errno)

            for _ in range(6):
                tg.start_soon(reader)
            await anyio.wait_all_tasks_blocked()
            await b.sendall(b"ab")
            with anyio.fail_after(WAIT):
                while len(got) < 2:
                    await anyio.sleep(0.01)
            a.close()
        assert sorted(got) == [b"a", b"b"]
        assert errors == [errno.EBADF] * 4


async def test_cancel_scope_loses_nothing() -> None:
    a, b = await tcp_pair()
    with a, b:
        with anyio.move_on_after(0.05):
            await a.recv(10)
        await b.sendall(b"kept")
        got: list[bytes] = []
        with anyio.CancelScope() as scope:
            scope.cancel()
            # trio: cancelled before the syscall. asyncio: a call that completes at once
            # is no checkpoint (as asyncio's own sock_recv), so it returns the data.
            got.append(await a.recv(10))
        with anyio.fail_after(WAIT):
            assert (got or [await a.recv(10)]) == [b"kept"]
        # A cancelled sendall sends nothing more: the peer sees a prefix, then END.
        await fill(a)
        payload = bytes(range(256)) * 1024
        with anyio.move_on_after(0.05):
            await a.sendall(payload)
        b.settimeout(0.0)
        received = b""
        with anyio.fail_after(WAIT):
            while True:
                try:
                    data = await b.recv(1 << 20)
                except BlockingIOError:
                    break
                received += data
            b.settimeout(None)
            await a.sendall(b"END")
            while not received.endswith(b"END"):
                received += await b.recv(1 << 20)
        assert payload.startswith(received[:-3].lstrip(b"f"))


async def test_create_connection_and_resolution() -> None:
    with await listener() as lst:
        port = lst.getsockname()[1]
        with anyio.fail_after(WAIT):
            cli = await asocket.create_connection(("localhost", port))
            srv, _ = await lst.accept()
        with cli, srv:
            await cli.sendall(b"x")
            assert await srv.recv(1) == b"x"
    infos = await asocket.getaddrinfo("localhost", 80, asocket.AF_INET, asocket.SOCK_STREAM)
    assert infos[0][4] == ("127.0.0.1", 80)


# -- asocket.anyio.wrap -------------------------------------------------------------------


async def test_wrap_kinds() -> None:
    a, b = asocket.socketpair()
    sa, sb = asocket.anyio.wrap(a), asocket.anyio.wrap(b)
    assert isinstance(sa, anyio.abc.UNIXSocketStream)
    lst = asocket.anyio.wrap(await listener())
    assert isinstance(lst, anyio.abc.SocketListener)
    cli, srv = await tcp_pair()
    stream = asocket.anyio.wrap(cli)
    assert isinstance(stream, anyio.abc.SocketStream)
    assert not isinstance(stream, anyio.abc.UNIXSocketStream)
    udp = asocket.socket(asocket.AF_INET, asocket.SOCK_DGRAM)
    with pytest.raises(ValueError, match="SOCK_STREAM"):
        asocket.anyio.wrap(udp)
    udp.close()
    with pytest.raises(TypeError):
        asocket.anyio.wrap(42)  # type: ignore[arg-type]
    for resource in (sa, sb, lst, stream):
        await resource.aclose()
    srv.close()


async def test_stream_conventions() -> None:
    cli, srv = await tcp_pair()
    a, b = asocket.anyio.wrap_stream(cli), asocket.anyio.wrap_stream(srv)
    await a.send(b"hello")
    assert await b.receive() == b"hello"
    await a.send_eof()
    with pytest.raises(anyio.EndOfStream):
        await b.receive()
    await b.send(b"still open")
    assert await a.receive() == b"still open"
    with pytest.raises(ValueError):
        await a.receive(0)
    woken: list[type[BaseException]] = []

    async def receiver() -> None:
        try:
            await a.receive()
        except anyio.ClosedResourceError as exc:
            woken.append(type(exc))

    async with anyio.create_task_group() as tg:
        tg.start_soon(receiver)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(anyio.BusyResourceError):
            await a.receive()
        await a.aclose()  # wakes the receiver
    assert woken == [anyio.ClosedResourceError]
    with pytest.raises(anyio.ClosedResourceError):
        await a.receive()
    with pytest.raises(anyio.ClosedResourceError):
        await a.send(b"x")
    await a.aclose()  # twice is fine
    await b.aclose()


async def test_close_wakes_receiver_with_closed_resource_error() -> None:
    cli, srv = await tcp_pair()
    a = asocket.anyio.wrap_stream(cli)
    failures: list[type[BaseException]] = []
    async with anyio.create_task_group() as tg:

        async def receiver() -> None:
            try:
                await a.receive()
            except Exception as exc:
                failures.append(type(exc))

        tg.start_soon(receiver)
        await anyio.wait_all_tasks_blocked()
        await a.aclose()
    assert failures == [anyio.ClosedResourceError]
    srv.close()


async def test_reset_is_broken_resource() -> None:
    cli, srv = await tcp_pair()
    a = asocket.anyio.wrap_stream(cli)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await srv.sendall(b"x")
    srv.close()  # RST
    with anyio.fail_after(WAIT), pytest.raises(anyio.BrokenResourceError):
        while True:
            await a.receive()
    await a.aclose()


async def test_typed_attributes_match_anyios_own() -> None:
    with await listener() as lst:
        port = lst.getsockname()[1]
        theirs = await anyio.connect_tcp("127.0.0.1", port)
        srv1, _ = await lst.accept()
        cli = await asocket.create_connection(("127.0.0.1", port))
        srv2, _ = await lst.accept()
    ours = asocket.anyio.wrap(cli)
    try:
        for attr in (
            SocketAttribute.family,
            SocketAttribute.remote_address,
            SocketAttribute.remote_port,
        ):
            assert ours.extra(attr) == theirs.extra(attr)
        assert ours.extra(SocketAttribute.local_address) == cli.getsockname()
        assert ours.extra(SocketAttribute.local_port) == cli.getsockname()[1]
        raw = ours.extra(SocketAttribute.raw_socket)
        assert isinstance(raw, socket.socket)
        assert raw.fileno() == cli.fileno()
    finally:
        await ours.aclose()
        await theirs.aclose()
        srv1.close()
        srv2.close()
    unix_a, unix_b = asocket.socketpair()
    ua = asocket.anyio.wrap(unix_a)
    assert ua.extra(SocketAttribute.family) == socket.AF_UNIX
    assert ua.extra(SocketAttribute.remote_address, None) in ("", None)
    with pytest.raises(anyio.TypedAttributeLookupError):
        ua.extra(SocketAttribute.local_port)
    await ua.aclose()
    unix_b.close()


async def test_tls_buffered_and_text_streams(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_ctx, client_ctx = tls_contexts
    lst = asocket.anyio.wrap_listener(await listener())
    port = lst.extra(SocketAttribute.local_port)
    async with anyio.create_task_group() as tg:

        async def serve_one() -> None:
            conn = await lst.accept()
            tls = await TLSStream.wrap(conn, server_side=True, ssl_context=server_ctx)
            buffered = BufferedByteReceiveStream(tls)
            line = await buffered.receive_until(b"\n", 1000)
            body = await buffered.receive_exactly(4)
            await tls.send(line.upper() + b"|" + body + b"\n")
            await tls.aclose()

        tg.start_soon(serve_one)
        with anyio.fail_after(WAIT):
            cli = await asocket.create_connection(("127.0.0.1", port))
            tls = await TLSStream.wrap(
                asocket.anyio.wrap(cli), hostname="127.0.0.1", ssl_context=client_ctx
            )
            text = TextStream(tls)
            await text.send("héllo\nbody")
            reply = ""
            try:
                while True:
                    reply += await text.receive()
            except anyio.EndOfStream:
                pass
            assert reply == "HéLLO|body\n"  # bytes.upper(): ASCII only
            assert tls.extra(SocketAttribute.remote_port) == port
            await tls.aclose()
    await lst.aclose()


async def test_listener_serve_with_tls_listener(
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_ctx, client_ctx = tls_contexts
    inner = asocket.anyio.wrap_listener(await listener())
    port = inner.extra(SocketAttribute.local_port)
    tls_listener = TLSListener(inner, server_ctx)

    async def handler(stream: Any) -> None:
        async with stream:
            await stream.send(b"pong:" + await stream.receive())

    async with anyio.create_task_group() as tg:
        tg.start_soon(tls_listener.serve, handler)
        with anyio.fail_after(WAIT):
            for _ in range(3):
                stream = await anyio.connect_tcp(
                    "127.0.0.1", port, tls=True, ssl_context=client_ctx, tls_hostname="127.0.0.1"
                )
                async with stream:
                    await stream.send(b"ping")
                    assert await stream.receive() == b"pong:ping"
        tg.cancel_scope.cancel()
    await tls_listener.aclose()


async def test_unix_stream_passes_fds() -> None:
    a, b = asocket.socketpair()
    sa, sb = asocket.anyio.wrap_stream(a), asocket.anyio.wrap_stream(b)
    assert isinstance(sa, anyio.abc.UNIXSocketStream)
    assert isinstance(sb, anyio.abc.UNIXSocketStream)
    r, w = os.pipe()
    try:
        await sa.send_fds(b"fd", [w])
        msg, fds = await sb.receive_fds(2, 1)
        assert msg == b"fd" and len(fds) == 1
        os.write(fds[0], b"!")
        os.close(fds[0])
        assert os.read(r, 1) == b"!"
    finally:
        os.close(r)
        os.close(w)
        await sa.aclose()
        await sb.aclose()


async def test_serve_tcp_on_every_backend() -> None:
    seen: list[Any] = []

    async def handler(sock: asocket.socket, address: Any) -> None:
        seen.append(address)
        while data := await sock.recv(1024):
            await sock.sendall(data.upper())

    async with await asocket.serve_tcp(handler, "127.0.0.1", 0, max_connections=4) as server:
        port = server.sockets[0].getsockname()[1]

        async def client(i: int) -> None:
            with await asocket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
                await sock.sendall(b"abc%d" % i)
                with anyio.fail_after(WAIT):
                    assert await sock.recv(10) == b"ABC%d" % i

        async with anyio.create_task_group() as tg:
            for i in range(8):
                tg.start_soon(client, i)
    assert len(seen) == 8
    assert server.active_connections == 0


async def test_happy_eyeballs_falls_back_across_families(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name resolving to ::1 (refused: nothing listens there) and 127.0.0.1 (listening):
    the connection is made on every backend, the resolver running in the library's thread."""
    with await listener() as lst:
        port = lst.getsockname()[1]

        def resolve(host: Any, port_: Any, family: int = 0, *args: Any) -> list[Any]:
            assert host == "dual.invalid"
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            ]

        monkeypatch.setattr(socket, "getaddrinfo", resolve)
        with anyio.fail_after(WAIT):
            sock = await asocket.create_connection(("dual.invalid", port), timeout=WAIT)
            srv, _ = await lst.accept()
        with sock, srv:
            assert sock.getpeername() == ("127.0.0.1", port)
            assert sock.gettimeout() == WAIT
