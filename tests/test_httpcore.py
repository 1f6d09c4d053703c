"""httpcore and httpx over asocket (``asocket.httpcore``), against local HTTP and HTTPS
servers (trustme certificates): GET, POST of 10 MiB, keep-alive reuse, timeouts, a server
that resets mid-response. Each scenario runs through asocket's backend and through
httpcore's default backend, and both must give the same results: async on every backend
of the ``anyio_backend`` fixture (asyncio loops and trio), sync on ``asocket.sync``.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

httpcore = pytest.importorskip("httpcore")
httpx = pytest.importorskip("httpx")
pytest.importorskip("trustme")

from _http_server import HTTPServer  # noqa: E402

import asocket.httpcore  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BODY = bytes(range(256)) * 4096 * 10  # 10 MiB
BODY_REPLY = f"{len(BODY)} {hashlib.sha256(BODY).hexdigest()}".encode()
READ_TIMEOUT = {"connect": 5.0, "read": 0.2, "write": 5.0, "pool": 5.0}
BOUNDED = {"connect": 5.0, "read": 10.0, "write": 10.0, "pool": 5.0}


@pytest.fixture(scope="module", params=[False, True], ids=["http", "https"])
def server(request: pytest.FixtureRequest) -> Iterator[HTTPServer]:
    with HTTPServer(tls=request.param) as srv:
        yield srv


def outcome(exc: BaseException) -> str:
    return type(exc).__name__


BROKEN = ("ReadError", "RemoteProtocolError")


def same(ours: list[Any], theirs: list[Any]) -> bool:
    """The same results, but for how a reset in the middle of a response shows: a read
    error, or (where TLS reads the reset as a ragged end of file, as the stdlib's
    ``SSLSocket`` may) an incomplete body; either way the request fails."""
    if ours[4] in BROKEN and theirs[4] in BROKEN:
        return ours[:4] + ours[5:] == theirs[:4] + theirs[5:]
    return ours == theirs


# -- async --------------------------------------------------------------------------------


async def async_scenario(server: HTTPServer, backend: Any) -> list[Any]:
    """The requests, and what each gave: (status, body) or the exception's type."""
    results: list[Any] = []
    async with httpcore.AsyncConnectionPool(
        ssl_context=server.client_context, network_backend=backend
    ) as pool:

        async def request(method: str, path: str, **kwargs: Any) -> Any:
            kwargs.setdefault("extensions", {"timeout": BOUNDED})
            try:
                response = await pool.request(method, server.url + path, **kwargs)
            except httpcore.TimeoutException as exc:
                return outcome(exc)
            except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
                return outcome(exc)
            return response.status, response.content

        results.append(await request("GET", "/small"))
        results.append(await request("POST", "/echo", content=BODY))
        first = await request("GET", "/peer")
        second = await request("GET", "/peer")
        results.append(("keep-alive reused", first == second))
        results.append(await request("GET", "/slow", extensions={"timeout": READ_TIMEOUT}))
        results.append(await request("GET", "/reset"))
        results.append(await request("GET", "/missing"))
    return results


EXPECTED = [
    (200, b"hello"),
    (200, BODY_REPLY),
    ("keep-alive reused", True),
    "ReadTimeout",
]


@pytest.mark.anyio
async def test_async_backend_gives_what_the_default_backend_gives(server: HTTPServer) -> None:
    ours = await async_scenario(server, asocket.httpcore.AsyncBackend())
    theirs = await async_scenario(server, None)
    assert ours[:4] == EXPECTED
    assert ours[5] == (404, b"not found")
    assert same(ours, theirs)


@pytest.mark.anyio
async def test_httpx_async_client_through_the_backend(server: HTTPServer) -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from httpx_client import async_transport
    finally:
        sys.path.pop(0)
    verify = server.client_context or True
    async with httpx.AsyncClient(transport=async_transport(verify=verify)) as client:
        response = await client.get(server.url + "/small")
        assert response.text == "hello"
        stream = response.extensions["network_stream"]  # the connection, still open
        assert stream.get_extra_info("server_addr") == ("127.0.0.1", server.port)
        if server.client_context is not None:
            assert stream.get_extra_info("ssl_object") is not None
        response = await client.post(server.url + "/echo", content=BODY)
        assert response.content == BODY_REPLY
        with pytest.raises(httpx.ReadTimeout):
            await client.get(server.url + "/slow", timeout=httpx.Timeout(5.0, read=0.2))


@pytest.mark.anyio
async def test_connect_errors_and_unix_sockets(tmp_path: Path) -> None:
    backend = asocket.httpcore.AsyncBackend()
    with asocket.sync.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_tcp("127.0.0.1", port, timeout=5.0)
    with pytest.raises(httpcore.ConnectError):
        await backend.connect_unix_socket(str(tmp_path / "missing.sock"), timeout=5.0)
    with asocket.sync.socket(asocket.AF_UNIX) as lst:
        lst.bind(str(tmp_path / "s.sock"))
        lst.listen()
        stream = await backend.connect_unix_socket(str(tmp_path / "s.sock"), timeout=5.0)
        conn, _ = lst.accept()
        with conn:
            await stream.write(b"ping", timeout=5.0)
            assert conn.recv(4) == b"ping"
            conn.sendall(b"pong")
            assert await stream.read(4, timeout=5.0) == b"pong"
            assert stream.get_extra_info("is_readable") is False
            with pytest.raises(httpcore.ReadTimeout):
                await stream.read(4, timeout=0.05)
            conn.close()
            assert await stream.read(4, timeout=5.0) == b""
        await stream.aclose()
    await backend.sleep(0.001)


# -- sync -------------------------------------------------------------------------------------


def sync_scenario(server: HTTPServer, backend: Any) -> list[Any]:
    results: list[Any] = []
    context = server.client_context
    with httpcore.ConnectionPool(ssl_context=context, network_backend=backend) as pool:

        def request(method: str, path: str, **kwargs: Any) -> Any:
            kwargs.setdefault("extensions", {"timeout": BOUNDED})
            try:
                response = pool.request(method, server.url + path, **kwargs)
            except httpcore.TimeoutException as exc:
                return outcome(exc)
            except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
                return outcome(exc)
            return response.status, response.content

        results.append(request("GET", "/small"))
        results.append(request("POST", "/echo", content=BODY))
        first = request("GET", "/peer")
        second = request("GET", "/peer")
        results.append(("keep-alive reused", first == second))
        results.append(request("GET", "/slow", extensions={"timeout": READ_TIMEOUT}))
        results.append(request("GET", "/reset"))
        results.append(request("GET", "/missing"))
    return results


def test_sync_backend_gives_what_the_default_backend_gives(server: HTTPServer) -> None:
    ours = sync_scenario(server, asocket.httpcore.SyncBackend())
    theirs = sync_scenario(server, None)
    assert ours[:4] == EXPECTED
    assert same(ours, theirs)


def test_sync_streams_use_asocket_sync(server: HTTPServer) -> None:
    with httpcore.ConnectionPool(
        ssl_context=server.client_context, network_backend=asocket.httpcore.SyncBackend()
    ) as pool:
        response = pool.request("GET", server.url + "/small")
        stream = response.extensions["network_stream"]
        sock = stream.get_extra_info("socket")
        if server.client_context is None:
            assert isinstance(sock, asocket.sync.socket)
        else:
            assert stream.get_extra_info("ssl_object") is not None
        assert stream.get_extra_info("client_addr")[0] == "127.0.0.1"


def test_httpx_example_fetches_a_url(server: HTTPServer, tmp_path: Path) -> None:
    args = [sys.executable, str(ROOT / "examples" / "httpx_client.py"), server.url + "/small"]
    if server.client_context is not None:
        ca = tmp_path / "ca.pem"
        assert HTTPServer.ca is not None
        HTTPServer.ca.cert_pem.write_to_path(str(ca))
        args += ["--cafile", str(ca)]
    for extra in ([], ["--trio"], ["--sync"]):
        done = subprocess.run(args + extra, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == "hello"
