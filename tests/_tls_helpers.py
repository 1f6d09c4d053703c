"""What the TLS tests share: certificates, contexts, faces, peers and bounds.

Certificates come from ``trustme`` (session-scoped fixtures; nothing checked in).
A *face* bundles what a test body needs from one face of asocket, so one body
runs on the async face (awaited, on every loop of the matrix) and on the sync
face (driven by :func:`run_sync`: the sync face's calls return plain values and
the body never really suspends).
"""

from __future__ import annotations

import datetime
import inspect
import os
import re
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

import asocket
import asocket.sync

if TYPE_CHECKING:
    import trustme
else:
    trustme = pytest.importorskip("trustme")  # a test dependency (pyproject's test extra)

T = TypeVar("T")
WAIT = 10.0  # bound on every wait that should succeed
HOST = "127.0.0.1"

# -- certificates ----------------------------------------------------------------------


@dataclass(frozen=True)
class Certs:
    """A CA, a server certificate for localhost/127.0.0.1/::1, a client certificate,
    an expired server certificate, and a second CA nobody trusts; all as files too."""

    ca: trustme.CA
    server: trustme.LeafCert
    client: trustme.LeafCert
    expired: trustme.LeafCert
    other_ca: trustme.CA
    other: trustme.LeafCert  # server certificate from other_ca
    dir: Path

    @property
    def cafile(self) -> str:
        return str(self.dir / "ca.pem")

    @property
    def certfile(self) -> str:
        """The server's key and chain in one PEM (openssl -cert, examples)."""
        return str(self.dir / "server.pem")

    @property
    def client_certfile(self) -> str:
        return str(self.dir / "client.pem")

    def server_ctx(self, leaf: trustme.LeafCert | None = None) -> ssl.SSLContext:
        """A fresh server context with the server certificate (or ``leaf``)."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        (leaf or self.server).configure_cert(ctx)
        return ctx

    def client_ctx(self) -> ssl.SSLContext:
        """A fresh client context trusting the CA (hostname checked)."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.ca.configure_trust(ctx)
        return ctx


@pytest.fixture(scope="session", name="certs")
def certs_fixture(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """Every certificate the TLS tests use, made once per session."""
    d = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1", "::1")
    client = ca.issue_cert("client@example.test", common_name="client")
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    expired = ca.issue_cert(
        "localhost", "127.0.0.1", not_before=past, not_after=past + datetime.timedelta(days=1)
    )
    other_ca = trustme.CA()
    other = other_ca.issue_cert("localhost", "127.0.0.1")
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    server.private_key_and_cert_chain_pem.write_to_path(str(d / "server.pem"))
    client.private_key_and_cert_chain_pem.write_to_path(str(d / "client.pem"))
    return Certs(ca, server, client, expired, other_ca, other, d)


# -- running one body on both faces ----------------------------------------------------


async def aw(value: Any) -> Any:
    """``await value`` if it is awaitable (async face), else return it (sync face)."""
    if inspect.isawaitable(value):
        return await value
    return value


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a body on the sync face: it must finish without ever suspending."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a sync-face body suspended")


@dataclass(frozen=True)
class Face:
    """One face of asocket, as a test body sees it."""

    name: str
    mod: Any  # asocket or asocket.sync
    SSLSocket: type

    def socket(self, *args: Any) -> Any:
        return self.mod.socket(*args)

    async def connect(self, address: tuple[Any, ...], timeout: float | None = WAIT) -> Any:
        """A plain face socket connected to ``address``."""
        return await aw(self.mod.create_connection(address, timeout=timeout))

    async def wrap(self, sock: Any, ctx: ssl.SSLContext, **kwargs: Any) -> Any:
        return await aw(self.mod.wrap_socket(sock, ctx, **kwargs))

    async def tls_connect(
        self, address: tuple[Any, ...], ctx: ssl.SSLContext, timeout: float | None = WAIT, **kw: Any
    ) -> Any:
        """A face TLS socket, handshake done, to ``address`` (server_hostname localhost)."""
        sock = await self.connect(address, timeout)
        kw.setdefault("server_hostname", "localhost")
        try:
            return await self.wrap(sock, ctx, **kw)
        except BaseException:
            sock.close()
            raise


ASYNC = Face("async", asocket, getattr(asocket, "SSLSocket", object))
SYNC = Face("sync", asocket.sync, getattr(asocket.sync, "SSLSocket", object))

Body = Callable[..., Coroutine[Any, Any, None]]  # (face, then the fixtures it names)


def twins(
    body: Body, *, every_backend: bool = False
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Make the async test (loop matrix) and its sync-face twin from one body.

    ``test_x, test_x_sync = twins(x)``; fixtures the body needs are passed by name.
    ``every_backend``: the async test is anyio's (the loop matrix and trio, see
    conftest.py) rather than pytest-asyncio's (the loop matrix).
    """
    params = list(inspect.signature(body).parameters)[1:]

    async def async_test(**kw: Any) -> None:
        await body(ASYNC, **kw)

    def sync_test(**kw: Any) -> None:
        run_sync(body(SYNC, **kw))

    sig = inspect.Signature([inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY) for p in params])
    for fn, suffix in ((async_test, ""), (sync_test, "_sync")):
        setattr(fn, "__signature__", sig)  # noqa: B010
        fn.__name__ = fn.__qualname__ = f"test_{body.__name__}{suffix}"
        fn.__doc__ = body.__doc__
    mark = pytest.mark.anyio if every_backend else pytest.mark.asyncio
    return mark(async_test), sync_test


# -- a peer: the stdlib's blocking SSLSocket in a thread -------------------------------


class Peer:
    """A loopback TCP listener; one connection is served by ``script`` in a thread.

    ``script(conn)`` gets the accepted stdlib socket (plain: it wraps it itself,
    so it can also misbehave). Its return value is ``result``; an exception is
    kept in ``error`` and re-raised by :meth:`join`. Every wait is bounded.
    """

    def __init__(self, script: Callable[[socket.socket], Any], family: int = socket.AF_INET):
        self.listener = socket.create_server(
            ("::1" if family == socket.AF_INET6 else HOST, 0), family=family
        )
        self.address = self.listener.getsockname()[:2]
        self.result: Any = None
        self.error: BaseException | None = None
        self._script = script
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.listener.settimeout(WAIT)
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(WAIT)
                self.result = self._script(conn)
        except BaseException as exc:  # reported by join()
            self.error = exc
        finally:
            self.listener.close()

    def join(self, check: bool = True) -> Any:
        self._thread.join(WAIT * 2)
        assert not self._thread.is_alive(), "the peer thread did not finish"
        if check and self.error is not None:
            raise self.error
        return self.result

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        self._thread.join(WAIT * 2)


def tls_server(
    ctx: ssl.SSLContext, then: Callable[[ssl.SSLSocket], Any]
) -> Callable[[socket.socket], Any]:
    """A peer script: wrap server-side (stdlib, blocking), then run ``then``."""

    def script(conn: socket.socket) -> Any:
        with ctx.wrap_socket(conn, server_side=True) as s:
            return then(s)

    return script


def echo(s: ssl.SSLSocket) -> int:
    """Echo until EOF; return the byte count."""
    total = 0
    while True:
        try:
            data = s.recv(65536)
        except (ssl.SSLEOFError, ConnectionResetError):
            return total
        if not data:
            return total
        s.sendall(data)
        total += len(data)


def read_all(s: ssl.SSLSocket) -> bytes:
    """Read until EOF (ragged or not)."""
    chunks = []
    while True:
        try:
            data = s.recv(65536)
        except (ssl.SSLEOFError, ConnectionResetError):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def read_n(n: int) -> Callable[[ssl.SSLSocket], bytes]:
    """A peer script: read exactly ``n`` bytes, answer ``k``, return them.

    (A client that closes with unread data, such as TLS 1.3 session tickets,
    makes its kernel send a reset, which may cut what the peer has yet to read:
    so the client waits for the ``k``.)"""

    def script(s: ssl.SSLSocket) -> bytes:
        chunks = bytearray()
        while len(chunks) < n:
            data = s.recv(min(65536, n - len(chunks)))
            if not data:
                break
            chunks += data
        s.sendall(b"k")
        return bytes(chunks)

    return script


# -- openssl subprocesses --------------------------------------------------------------

OPENSSL = "/usr/bin/openssl" if os.path.exists("/usr/bin/openssl") else "openssl"


class OpenSSLServer:
    """``openssl s_server`` on 127.0.0.1, port parsed from its ``ACCEPT`` line."""

    def __init__(self, certs: Certs, *args: str) -> None:
        self.proc = subprocess.Popen(
            [
                OPENSSL,
                "s_server",
                "-accept",
                f"{HOST}:0",
                "-cert",
                certs.certfile,
                "-naccept",
                "1",
                *args,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.output: list[str] = []
        self.port = 0
        assert self.proc.stdout is not None
        timer = threading.Timer(WAIT, self.proc.kill)
        timer.start()
        try:
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace")
                self.output.append(line)
                m = re.match(r"ACCEPT .*:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    break
        finally:
            timer.cancel()
        assert self.port, f"s_server did not start: {''.join(self.output)}"
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.output.append(raw.decode(errors="replace"))

    @property
    def address(self) -> tuple[str, int]:
        return (HOST, self.port)

    def close(self) -> str:
        """Stop it (by PID) and return everything it printed."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(WAIT)
        self._reader.join(WAIT)
        if self.proc.stdin:
            self.proc.stdin.close()
        if self.proc.stdout:
            self.proc.stdout.close()
        return "".join(self.output)

    def __enter__(self) -> OpenSSLServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def s_client(
    address: tuple[str, int], certs: Certs, *args: str, stdin: bytes = b"", timeout: float = WAIT
) -> subprocess.CompletedProcess[bytes]:
    """Run ``openssl s_client`` against ``address``, bounded, killed on timeout."""
    return subprocess.run(
        [
            OPENSSL,
            "s_client",
            "-connect",
            f"{address[0]}:{address[1]}",
            "-CAfile",
            certs.cafile,
            "-verify_return_error",
            *args,
        ],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(name="fd_count")
def fd_count_fixture() -> Iterator[Callable[[], int]]:
    """How many descriptors this process has open (for leak checks)."""

    def count() -> int:
        return len(os.listdir("/proc/self/fd"))

    yield count


def requires_tls() -> None:
    """Skip the calling module until asocket has TLS (phase 2 of issue 8)."""
    if not hasattr(asocket, "wrap_socket") or not hasattr(asocket.sync, "wrap_socket"):
        pytest.skip("asocket has no TLS yet (issue 8)", allow_module_level=True)
