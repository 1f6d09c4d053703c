"""Functions run in worker processes by tests/test_hardening.py (importable by a
``spawn`` child, without pytest's conftest)."""

from __future__ import annotations

import asyncio
from typing import Any

WAIT = 30.0


def describe(sock: Any) -> str:
    cls = type(sock)
    return f"{cls.__module__}.{cls.__qualname__} {sock.gettimeout()}"


def sync_echo_line(sock: Any) -> str:
    """Receive one line on ``sock`` (an ``asocket.sync.socket``) and send it back, prefixed
    with what the socket is; return that description."""
    with sock:
        info = describe(sock)
        line = b""
        while not line.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            line += chunk
        sock.sendall(info.encode() + b" " + line)
    return info


def async_echo_line(sock: Any) -> str:
    """``sync_echo_line`` for an ``asocket.socket``, on ``asyncio.run``."""

    async def main() -> str:
        with sock:
            info = describe(sock)
            line = b""
            while not line.endswith(b"\n"):
                chunk = await asyncio.wait_for(sock.recv(4096), WAIT)
                if not chunk:
                    break
                line += chunk
            await asyncio.wait_for(sock.sendall(info.encode() + b" " + line), WAIT)
        return info

    return asyncio.run(main())
