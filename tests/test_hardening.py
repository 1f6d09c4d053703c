"""Hardening (issue 12): servers never take what is not theirs, bad input never changes
what the user asked, sockets travel to worker processes, Windows says what it lacks."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

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


@pytest.mark.asyncio
async def test_serve_unix_refuses_a_live_servers_path(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    async with await asocket.serve_unix(echo, path):
        mine = identity(path)
        with pytest.raises(OSError) as info:
            await asocket.serve_unix(echo, path)
        assert info.value.errno == errno.EADDRINUSE
        assert str(info.value) == f"[Errno {errno.EADDRINUSE}] {os.strerror(errno.EADDRINUSE)}"
        assert identity(path) == mine  # the first server's file, untouched
        assert await asyncio.to_thread(unix_roundtrip, path) == b"ping"  # still serving
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


@pytest.mark.asyncio
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
            await asyncio.wait_for(first.wait_closed(), WAIT)
            assert identity(path) == theirs
            assert await asyncio.to_thread(unix_roundtrip, path) == b"ping"
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


@pytest.mark.asyncio
async def test_serve_unix_replaces_a_stale_socket_file(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    stale_socket_file(path)
    async with await asocket.serve_unix(echo, path):
        assert await asyncio.to_thread(unix_roundtrip, path) == b"ping"
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
