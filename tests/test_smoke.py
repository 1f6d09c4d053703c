import asyncio

import pytest

import asocket
import asocket.sync


@pytest.mark.asyncio
async def test_echo_roundtrip(loop_kind: str) -> None:
    a, b = asocket.socketpair()
    with a, b:
        reader = asyncio.create_task(b.recv(10))
        await asyncio.sleep(0.01)
        await a.sendall(b"hey")
        assert await asyncio.wait_for(reader, 5) == b"hey"


def test_sync_roundtrip() -> None:
    a, b = asocket.sync.socketpair()
    with a, b:
        a.sendall(b"hey")
        assert b.recv(10) == b"hey"
