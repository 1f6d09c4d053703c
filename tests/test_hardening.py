"""Hardening (issue 12): servers never take what is not theirs, bad input never changes
what the user asked, sockets travel to worker processes, Windows says what it lacks.

The async tests run on every backend (the loop matrix and trio: see ``conftest.py``)."""

from __future__ import annotations

import errno
import multiprocessing
import multiprocessing.resource_sharer
import os
import pickle
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import _mp_workers
import anyio
import pytest
from _async_helpers import bounded

import asocket
import asocket.sync

WAIT = 5.0


async def echo(sock: asocket.socket, addr: Any) -> None:
    while data := await sock.recv(4096):
        await sock.sendall(data)


def sync_echo(sock: asocket.sync.socket, addr: Any) -> None:
    while data := sock.recv(4096):
        sock.sendall(data)


def unix_roundtrip(path: str, payload: bytes = b"ping") -> bytes:
    """Connect to ``path`` with a stdlib socket and return the echo of ``payload``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(WAIT)
        sock.connect(path)
        sock.sendall(payload)
        return sock.recv(len(payload) + 10)


async def roundtrip_in_thread(path: str) -> bytes:
    """``unix_roundtrip(path)`` in a worker thread, bounded."""
    return await bounded(anyio.to_thread.run_sync(unix_roundtrip, path))


def identity(path: str) -> tuple[int, int]:
    st = os.stat(path)
    assert stat.S_ISSOCK(st.st_mode)
    return st.st_dev, st.st_ino


def stale_socket_file(path: str) -> None:
    """Leave a socket file at ``path`` that nothing listens on (a crashed server's)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(path)
        dead.listen()
    assert stat.S_ISSOCK(os.stat(path).st_mode)


# -- item 1: serve_unix never takes over a live server's socket file ----------------


@pytest.mark.anyio
async def test_serve_unix_refuses_a_live_servers_path(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    async with await asocket.serve_unix(echo, path):
        mine = identity(path)
        with pytest.raises(OSError) as info:
            await asocket.serve_unix(echo, path)
        assert info.value.errno == errno.EADDRINUSE
        assert str(info.value) == f"[Errno {errno.EADDRINUSE}] {os.strerror(errno.EADDRINUSE)}"
        assert identity(path) == mine  # the first server's file, untouched
        assert await roundtrip_in_thread(path) == b"ping"  # still serving
    assert not os.path.exists(path)


def test_sync_serve_unix_refuses_a_live_servers_path(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    with asocket.sync.serve_unix(sync_echo, path):
        mine = identity(path)
        with pytest.raises(OSError) as info:
            asocket.sync.serve_unix(sync_echo, path)
        assert info.value.errno == errno.EADDRINUSE
        assert identity(path) == mine
        assert unix_roundtrip(path) == b"ping"
    assert not os.path.exists(path)


@pytest.mark.anyio
async def test_serve_unix_close_leaves_another_servers_file(tmp_path: Path) -> None:
    # The first server's file is replaced behind its back (unlinked, a second server
    # bound there): closing the first must leave the second's file, and the second serves.
    path = str(tmp_path / "s.sock")
    first = await asocket.serve_unix(echo, path)
    try:
        os.unlink(path)
        async with await asocket.serve_unix(echo, path):
            theirs = identity(path)
            first.close()
            await bounded(first.wait_closed(), WAIT)
            assert identity(path) == theirs
            assert await roundtrip_in_thread(path) == b"ping"
        assert not os.path.exists(path)  # the second removed its own
    finally:
        first.close()


def test_sync_serve_unix_close_leaves_another_servers_file(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    first = asocket.sync.serve_unix(sync_echo, path)
    try:
        os.unlink(path)
        with asocket.sync.serve_unix(sync_echo, path):
            theirs = identity(path)
            first.close()
            first.wait_closed()
            assert identity(path) == theirs
            assert unix_roundtrip(path) == b"ping"
        assert not os.path.exists(path)
    finally:
        first.close()


@pytest.mark.anyio
async def test_serve_unix_replaces_a_stale_socket_file(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    stale_socket_file(path)
    async with await asocket.serve_unix(echo, path):
        assert await roundtrip_in_thread(path) == b"ping"
    assert not os.path.exists(path)


def test_sync_serve_unix_replaces_a_stale_socket_file(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    stale_socket_file(path)
    with asocket.sync.serve_unix(sync_echo, path):
        assert unix_roundtrip(path) == b"ping"
    assert not os.path.exists(path)


def test_serve_unix_leaves_a_regular_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "not-a-socket"
    path.write_text("data")
    with pytest.raises(OSError) as info:
        asocket.sync.serve_unix(sync_echo, str(path))
    assert info.value.errno == errno.EADDRINUSE
    assert path.read_text() == "data"


def test_serve_unix_refuses_a_live_server_with_a_full_backlog(tmp_path: Path) -> None:
    # A live server whose backlog is full answers a probe with EAGAIN, not a refusal.
    path = str(tmp_path / "s.sock")
    clients = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
        live.bind(path)
        live.listen(0)
        try:
            for _ in range(64):
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                clients.append(c)
                c.setblocking(False)
                if c.connect_ex(path) != 0:
                    break
            with pytest.raises(OSError) as info:
                asocket.sync.serve_unix(sync_echo, path)
            assert info.value.errno == errno.EADDRINUSE
            assert stat.S_ISSOCK(os.stat(path).st_mode)
        finally:
            for c in clients:
                c.close()


# -- item 2: a port out of range never silently becomes another port ---------------

BAD_PORTS = [70000, 65536, -1, 2**64, "70000", " +70000", b"65536"]


def stdlib_error(fn: Any, *args: Any) -> tuple[type[BaseException], str]:
    with pytest.raises(Exception) as info:
        fn(*args)
    return type(info.value), str(info.value)


def test_stdlib_bind_and_connect_errors_are_what_asocket_raises() -> None:
    # The error asocket raises for every entry point is the stdlib's own, from bind/connect.
    with socket.socket() as s:
        assert stdlib_error(s.bind, ("127.0.0.1", 70000)) == (
            OverflowError,
            "bind(): port must be 0-65535.",
        )
        assert stdlib_error(s.connect, ("127.0.0.1", 70000)) == (
            OverflowError,
            "connect(): port must be 0-65535.",
        )


@pytest.mark.anyio
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", None])
@pytest.mark.parametrize("port", BAD_PORTS)
async def test_serve_tcp_port_out_of_range_is_refused(host: str | None, port: Any) -> None:
    with pytest.raises(OverflowError, match=r"^bind\(\): port must be 0-65535\.$"):
        server = await asocket.serve_tcp(echo, host, port)
        server.close()  # pragma: no cover - the bug: it listened on another port


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", None])
@pytest.mark.parametrize("port", BAD_PORTS)
def test_sync_serve_tcp_port_out_of_range_is_refused(host: str | None, port: Any) -> None:
    with pytest.raises(OverflowError, match=r"^bind\(\): port must be 0-65535\.$"):
        server = asocket.sync.serve_tcp(sync_echo, host, port)
        server.close()  # pragma: no cover


@pytest.mark.anyio
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
@pytest.mark.parametrize("port", BAD_PORTS)
async def test_create_connection_port_out_of_range_is_refused(host: str, port: Any) -> None:
    with pytest.raises(OverflowError, match=r"^connect\(\): port must be 0-65535\.$"):
        sock = await asocket.create_connection((host, port), timeout=WAIT)
        sock.close()  # pragma: no cover


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
@pytest.mark.parametrize("port", BAD_PORTS)
def test_sync_create_connection_port_out_of_range_is_refused(host: str, port: Any) -> None:
    with pytest.raises(OverflowError, match=r"^connect\(\): port must be 0-65535\.$"):
        sock = asocket.sync.create_connection((host, port), timeout=WAIT)
        sock.close()  # pragma: no cover


@pytest.mark.anyio
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
@pytest.mark.parametrize("port", [70000, 65536, -1, 2**64])
async def test_create_server_port_out_of_range_is_the_stdlibs_error(host: str, port: int) -> None:
    # (socket.create_server itself leaks its socket on this error: the bind's is the same)
    with socket.socket() as raw:
        expected = stdlib_error(raw.bind, ("127.0.0.1", port))
    with pytest.raises(OverflowError) as info:
        (await asocket.create_server((host, port))).close()
    assert (type(info.value), str(info.value)) == expected
    with pytest.raises(OverflowError) as info:
        asocket.sync.create_server((host, port)).close()
    assert (type(info.value), str(info.value)) == expected


@pytest.mark.anyio
@pytest.mark.parametrize("port", [70000, 65536, -1, 2**64, "70000", True, 1.5, None, "0"])
async def test_getaddrinfo_is_the_stdlibs_for_any_port(port: Any) -> None:
    # asocket.getaddrinfo is the stdlib's function made awaitable: same answer, same
    # error, wrapped port included (the stdlib's getaddrinfo wraps 70000 to 4464).
    args = ("127.0.0.1", port, 0, socket.SOCK_STREAM)
    try:
        expected: Any = socket.getaddrinfo(*args)
    except Exception as exc:
        with pytest.raises(type(exc)) as info:
            await asocket.getaddrinfo(*args)
        assert str(info.value) == str(exc)
    else:
        assert await asocket.getaddrinfo(*args) == expected
        assert asocket.sync.getaddrinfo(*args) == expected


@pytest.mark.parametrize("port", [True, 1.5])
def test_serve_tcp_port_type_is_judged_alike_with_and_without_a_host(port: Any) -> None:
    # host=None used to bind (port True: port 1); with a host getaddrinfo refused it.
    errors = set()
    for host in (None, "127.0.0.1"):
        with pytest.raises(OSError) as info:
            asocket.sync.serve_tcp(sync_echo, host, port).close()
        errors.add(str(info.value))
    assert errors == {"Int or String expected"}


def test_serve_tcp_takes_a_service_string_with_no_host() -> None:
    with asocket.sync.serve_tcp(sync_echo, None, "0") as server:  # type: ignore[call-overload]
        assert server.sockets[0].getsockname()[1] > 0


@pytest.mark.anyio
@pytest.mark.parametrize("value", [2.5, True, "3"])
async def test_max_connections_must_be_an_int(value: Any) -> None:
    with pytest.raises(TypeError, match="max_connections must be a positive integer or None"):
        asocket.sync.serve_tcp(sync_echo, "127.0.0.1", 0, max_connections=value).close()
    with pytest.raises(TypeError, match="max_connections must be a positive integer or None"):
        (await asocket.serve_tcp(echo, "127.0.0.1", 0, max_connections=value)).close()


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (-1, ValueError),
        (float("nan"), ValueError),
        (-0.5, ValueError),
        ("5", TypeError),
        (True, TypeError),
    ],
)
@pytest.mark.anyio
async def test_grace_period_is_checked(tmp_path: Path, value: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="grace_period must be"):
        asocket.sync.serve_tcp(sync_echo, "127.0.0.1", 0, grace_period=value).close()
    with pytest.raises(error, match="grace_period must be"):
        asocket.sync.serve_unix(sync_echo, str(tmp_path / "g.sock"), grace_period=value).close()
    with pytest.raises(error, match="grace_period must be"):
        (await asocket.serve_tcp(echo, "127.0.0.1", 0, grace_period=value)).close()
    assert not os.path.exists(tmp_path / "g.sock")


# -- Windows: one clear line on import -------------------------------------------------


@pytest.mark.parametrize("module", ["asocket", "asocket.sync"])
def test_import_on_windows_says_it_is_not_supported(module: str) -> None:
    code = (
        "import sys, traceback\n"
        "sys.platform = 'win32'\n"
        "try:\n"
        f"    import {module}\n"
        "except ImportError as exc:\n"
        "    print(traceback.extract_tb(exc.__traceback__)[-1].filename)\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()
    assert len(out) == 2, out  # the error is one line
    where, message = out
    assert where.endswith(os.path.join("asocket", "_stdlib.py"))  # not __init__.py
    assert message.startswith("asocket does not support Windows yet")


# -- item 6: sockets handed to worker processes --------------------------------------

FACES: dict[str, tuple[Any, Any, str]] = {
    "async": (asocket.from_socket, _mp_workers.async_echo_line, "asocket.socket"),
    "sync": (asocket.sync.from_socket, _mp_workers.sync_echo_line, "asocket.sync.socket"),
}


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


@pytest.mark.parametrize("face", sorted(FACES))
def test_plain_pickle_still_refuses_sockets(face: str) -> None:
    a, b = socket.socketpair()
    with (
        FACES[face][0](a) as sock,
        b,
        pytest.raises(TypeError, match=r"^cannot pickle 'socket' object$"),
    ):
        pickle.dumps(sock)


@pytest.mark.parametrize("face", sorted(FACES))
def test_spawned_process_echoes_on_a_passed_socket(face: str) -> None:
    adopt, worker, cls = FACES[face]
    ctx = multiprocessing.get_context("spawn")
    a, peer = socket.socketpair()
    with adopt(a) as sock, peer:
        sock.settimeout(7.5)
        proc = ctx.Process(target=worker, args=(sock,))
        proc.start()
        try:
            sock.close()  # the child has its own descriptor
            peer.settimeout(60)
            peer.sendall(b"hello\n")
            assert read_all(peer) == f"{cls} 7.5 hello\n".encode()
        finally:
            proc.join(60)
            if proc.exitcode is None:  # pragma: no cover - a hung child
                proc.kill()
                proc.join(10)
        assert proc.exitcode == 0


@pytest.mark.parametrize("face", sorted(FACES))
def test_pool_apply_gets_a_socket(face: str) -> None:
    adopt, worker, cls = FACES[face]
    ctx = multiprocessing.get_context("spawn")
    a, peer = socket.socketpair()
    try:
        with adopt(a) as sock, peer, ctx.Pool(1) as pool:
            peer.settimeout(60)
            peer.sendall(b"pool\n")
            # Pool.apply(f, (sock,)), bounded: apply is apply_async(...).get().
            assert pool.apply_async(worker, (sock,)).get(60) == f"{cls} None"
            sock.close()
            assert read_all(peer) == f"{cls} None pool\n".encode()
    finally:
        # The parent's resource sharer (a thread and a Unix socket) sent the descriptor.
        multiprocessing.resource_sharer.stop(timeout=10)  # type: ignore[attr-defined,unused-ignore]


def test_registration_is_lazy_and_import_stays_light() -> None:
    code = (
        "import sys\n"
        "import asocket, asocket.sync\n"
        "assert 'multiprocessing' not in sys.modules\n"
        "from asocket._reduction import _Finder\n"
        "assert any(isinstance(f, _Finder) for f in sys.meta_path)\n"
        "import multiprocessing.reduction as r\n"
        "assert r.ForkingPickler._extra_reducers[asocket.socket]\n"
        "assert r.ForkingPickler._extra_reducers[asocket.sync.socket]\n"
        "assert not any(isinstance(f, _Finder) for f in sys.meta_path)\n"
        "print('ok')\n"
    )
    eager = (
        "import multiprocessing.reduction as r, sys\n"
        "import asocket, asocket.sync\n"
        "from asocket._reduction import _Finder\n"
        "assert r.ForkingPickler._extra_reducers[asocket.socket]\n"
        "assert r.ForkingPickler._extra_reducers[asocket.sync.socket]\n"
        "assert not any(isinstance(f, _Finder) for f in sys.meta_path)\n"
        "print('ok')\n"
    )
    for source in (code, eager):
        out = subprocess.run(
            [sys.executable, "-c", source], capture_output=True, text=True, timeout=60
        )
        assert out.stdout == "ok\n", out.stderr
