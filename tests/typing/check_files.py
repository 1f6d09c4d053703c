"""Type-checked, never run: ``mypy --strict`` proves the async files' types as a user
sees them (``sock.makefile()``, its reads and writes, its exceptions)."""

from __future__ import annotations

from typing import assert_type

import asocket


async def files(sock: asocket.socket) -> None:
    async with sock.makefile("rwb", buffering=4096) as f:
        assert_type(f, asocket.AsyncSocketFile)
        assert_type(await f.readline(), bytes)
        assert_type(await f.read(), bytes)
        assert_type(await f.read1(10), bytes)
        assert_type(await f.readinto(bytearray(10)), int)
        assert_type(await f.readexactly(4), bytes)
        assert_type(await f.readuntil((b"\r\n", b"\n"), max_bytes=100), bytes)
        assert_type(await f.peek(), bytes)
        assert_type(f.take_buffered(), bytes)
        async for line in f:
            assert_type(line, bytes)
        assert_type(await f.write(memoryview(b"x")), int)
        await f.flush()
    try:
        await f.readexactly(1)
    except asocket.IncompleteReadError as exc:
        assert_type(exc.partial, bytes)
        assert_type(exc.expected, int | None)
    except asocket.LimitOverrunError as exc:
        assert_type(exc.consumed, int)
