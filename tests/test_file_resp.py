"""examples/resp_client.py against a real ``redis-server`` on loopback (skipped
without one): lines and length-prefixed payloads on ``makefile("rwb")``, on every
backend (the loop matrix and trio: see ``conftest.py``).

The server runs on 127.0.0.1 on a free port, with persistence off, and is
killed by its pid when the module's tests end.
"""

from __future__ import annotations

import importlib.util
import inspect
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import asocket

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "resp_client.py"
REDIS = shutil.which("redis-server")
WAIT = 10.0

pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server not installed")


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("resp_client", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


resp = load_example()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    assert REDIS is not None
    with tempfile.TemporaryDirectory() as workdir:
        for _attempt in range(5):
            port = free_port()
            proc = subprocess.Popen(
                [
                    REDIS,
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    workdir,
                    "--daemonize",
                    "no",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                give_up = time.monotonic() + WAIT
                while proc.poll() is None and time.monotonic() < give_up:
                    try:
                        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                            s.sendall(b"PING\r\n")
                            if s.recv(100) == b"+PONG\r\n":
                                break
                    except OSError:
                        time.sleep(0.05)
                if proc.poll() is None:
                    yield port
                    return
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait(WAIT)
        pytest.fail("redis-server did not start")


@pytest.mark.anyio
async def test_commands_and_replies(backend: str, redis_port: int) -> None:
    key = f"asocket:{backend}:"
    async with await resp.Redis.connect("127.0.0.1", redis_port, WAIT) as r:
        assert await r.execute("PING") == b"PONG"
        assert await r.execute("SET", key + "s", "h\u00e9llo\r\nworld") == b"OK"
        assert await r.execute("GET", key + "s") == "h\u00e9llo\r\nworld".encode()
        assert await r.execute("GET", key + "missing") is None
        assert await r.execute("DEL", key + "n") in (0, 1)
        assert await r.execute("INCR", key + "n") == 1
        await r.execute("DEL", key + "l")
        assert await r.execute("RPUSH", key + "l", "a", b"", 3) == 3
        assert await r.execute("LRANGE", key + "l", 0, -1) == [b"a", b"", b"3"]
        with pytest.raises(resp.RespError, match="ERR"):
            await r.execute("NOSUCHCOMMAND")
        assert await r.execute("PING") == b"PONG"  # the stream stays in step after an error


@pytest.mark.anyio
async def test_big_value_and_pipeline(backend: str, redis_port: int) -> None:
    key = f"asocket:big:{backend}"
    value = bytes(range(256)) * 8192  # 2 MiB, every byte value, CRLFs inside
    async with await resp.Redis.connect("127.0.0.1", redis_port, WAIT) as r:
        assert await r.execute("SET", key, value) == b"OK"
        assert await r.execute("GET", key) == value
        await r.execute("DEL", key + "n")
        replies = await r.pipeline([("INCR", key + "n")] * 2000)
        assert replies == list(range(1, 2001))


@pytest.mark.anyio
async def test_timeout_mid_reply_keeps_the_stream(backend: str, redis_port: int) -> None:
    # BLPOP on an empty list blocks server-side: the reply comes after our timeout.
    key = f"asocket:blpop:{backend}"
    async with await resp.Redis.connect("127.0.0.1", redis_port, WAIT) as r:
        await r.execute("DEL", key)
        r.sock.settimeout(0.05)
        with pytest.raises(TimeoutError):
            await r.execute("BLPOP", key, 0.3)
        r.sock.settimeout(WAIT)
        assert await resp.read_reply(r.file) is None  # the late reply: nil
        assert await r.execute("PING") == b"PONG"


def test_format_reply() -> None:
    assert resp.format_reply(b"x") == '"x"'
    assert resp.format_reply(None) == "(nil)"
    assert resp.format_reply(3) == "(integer) 3"
    assert resp.format_reply([b"a", [1, None]]) == '1) "a"\n2) 1) (integer) 1\n   2) (nil)'
    assert resp.format_reply([]) == "(empty array)"
    assert resp.encode(["SET", b"k", 1]) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n"


def test_command_line(redis_port: int) -> None:
    cmd = [sys.executable, "-W", "error", str(EXAMPLE), "--port", str(redis_port)]
    out = subprocess.run(
        [*cmd, "--repeat", "2", "ECHO", "hi"], capture_output=True, timeout=30, check=False
    )
    assert (out.returncode, out.stderr) == (0, b"")
    assert out.stdout == b'"hi"\n"hi"\n'
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    refused = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLE), "--port", str(closed_port), "PING"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert refused.returncode == 1
    assert b"ConnectionRefusedError" in refused.stderr


def test_module_is_async_face_only() -> None:
    assert inspect.iscoroutinefunction(resp.read_reply)
    assert resp.Redis.__init__.__annotations__["sock"] in ("asocket.socket", asocket.socket)
