"""The edge waiter (``_waiters/epoll.py``): asyncio's selector loop on Linux waits
through an edge-triggered epoll descriptor of asocket's own, which reports changes,
not states.

A report taken by nobody is not repeated, so a wait that sleeps when the socket
still holds something would sleep for good. These tests make each such case happen
(bytes left behind a read that filled its buffer, the end of the stream or a reset
in the same report as the last bytes, urgent data, a descriptor number reused, a
report that came while nobody waited) and check that the read returns what the
stdlib's would. The first group runs on every backend (the order of attempts and
waits changes no result anywhere); the second looks at the edge waiter itself.
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _async_helpers import WAIT, Tasks, bounded, peer_pair, read_sent_later, reset, slow_reads

import asocket
from asocket._waiters.current import waiter_for

anyio = pytest.importorskip("anyio")


async def waited_read(sock: asocket.socket, peer: socket.socket, data: bytes, size: int) -> bytes:
    """``sock.recv(size)`` that has to wait: the peer sends ``data`` a moment later."""
    return await read_sent_later(lambda: sock.recv(size), lambda: peer.sendall(data))


async def read_all(sock: asocket.socket, later: Callable[[], Any], size: int = 1024) -> list[Any]:
    """Every result of ``sock.recv(size)`` (then the exception, if one ends them) until
    the end of the stream, while another task calls ``later()`` a moment after."""

    async def all_of_it() -> list[Any]:
        got: list[Any] = []
        try:
            while data := await sock.recv(size):
                got.append(data)
        except OSError as exc:
            return [*got, exc]
        return [*got, b""]

    return await read_sent_later(all_of_it, later)


# -- every backend: nothing left behind ----------------------------------------------


@pytest.mark.anyio
async def test_bytes_behind_a_read_that_filled_its_buffer() -> None:
    """A read that filled its buffer may have left bytes: the next read tries first."""
    sock, peer = await peer_pair()
    with sock, peer:
        await slow_reads(sock, peer)
        assert await waited_read(sock, peer, b"x" * 3000, 1000) == b"x" * 1000
        got = b""
        with anyio.fail_after(WAIT):
            while len(got) < 2000:
                got += await sock.recv(1000)
        assert got == b"x" * 2000


@pytest.mark.anyio
async def test_last_bytes_and_end_of_stream_in_one_report() -> None:
    sock, peer = await peer_pair()
    with sock, peer:
        await slow_reads(sock, peer)

        def last_then_eof() -> None:
            peer.sendall(b"last")
            peer.shutdown(socket.SHUT_WR)  # the FIN follows at once: one report

        assert await read_all(sock, last_then_eof) == [b"last", b""]
        assert await bounded(sock.recv(1024)) == b""


@pytest.mark.anyio
async def test_last_bytes_and_reset_in_one_report() -> None:
    sock, peer = await peer_pair()
    with sock:

        def last_then_reset() -> None:
            peer.sendall(b"last")
            reset(peer)  # right behind the bytes

        await slow_reads(sock, peer)
        got = await read_all(sock, last_then_reset)
        if got[0] == b"last":  # (else the kernel dropped the bytes for the reset)
            got = got[1:]
        assert len(got) == 1 and isinstance(got[0], ConnectionResetError), got
        assert got[0].errno == errno.ECONNRESET


@pytest.mark.anyio
async def test_bytes_behind_urgent_data() -> None:
    """A TCP read stops at urgent data's mark, bytes left behind it: a read that waited
    and stopped there leaves the socket readable."""
    sock, peer = await peer_pair()
    with sock, peer:
        await slow_reads(sock, peer)

        async def later() -> None:
            await anyio.sleep(0.02)
            peer.sendall(b"a")
            peer.send(b"!", socket.MSG_OOB)
            peer.sendall(b"bc")

        got = b""
        async with anyio.create_task_group() as tg:
            tg.start_soon(later)
            with anyio.fail_after(WAIT):
                while len(got) < 3:
                    got += await sock.recv(1024)
        assert got == b"abc"  # (the urgent byte is out of band, not in the stream)


@pytest.mark.anyio
async def test_bytes_that_came_while_nobody_waited() -> None:
    sock, peer = await peer_pair()
    with sock, peer:
        await slow_reads(sock, peer)
        peer.sendall(b"while busy")
        await anyio.sleep(0.05)  # the report comes and goes: no read waits
        with anyio.fail_after(WAIT):
            assert await sock.recv(1024) == b"while busy"


@pytest.mark.anyio
async def test_a_reused_descriptor_number_is_watched_anew() -> None:
    """A socket closed after waiting, and a new one given the same number: the new one's
    waits are its own (the old registration went with the old socket)."""
    sock, peer = await peer_pair()
    fd = sock.fileno()
    with peer:
        await slow_reads(sock, peer)
        sock.close()
        sock, peer2 = await peer_pair()
        with sock, peer2:
            assert sock.fileno() == fd  # (the lowest free number: the one just freed)
            assert await waited_read(sock, peer2, b"new", 1024) == b"new"
            assert await waited_read(sock, peer2, b"again", 1024) == b"again"


@pytest.mark.anyio
async def test_several_readers_share_one_report() -> None:
    sock, peer = await peer_pair()
    with sock, peer:
        await slow_reads(sock, peer)
        async with Tasks() as tasks:
            readers = [tasks.spawn(sock.recv(3)) for _ in range(3)]
            await anyio.sleep(0.05)
            peer.sendall(b"abcdefghi")  # one report, three readers
            got = [await reader.join(WAIT) for reader in readers]
        assert sorted(got) == [b"abc", b"def", b"ghi"]


@pytest.mark.anyio
async def test_a_wait_cancelled_then_bytes_then_a_read() -> None:
    """The report of bytes that came while the only waiter was being cancelled is not
    lost: the next read gets them."""
    sock, peer = await peer_pair()
    with sock, peer:
        await slow_reads(sock, peer)
        with anyio.move_on_after(0.05):
            await sock.recv(1024)  # waits first, cancelled
        peer.sendall(b"after")
        await anyio.sleep(0.05)
        with anyio.fail_after(WAIT):
            assert await sock.recv(1024) == b"after"


# -- the edge waiter itself (asyncio's selector loop on Linux) ---------------------------

edge_only = pytest.mark.skipif(not hasattr(select, "epoll"), reason="Linux: epoll")


def registered(loop: asyncio.AbstractEventLoop) -> list[int]:
    """The descriptors the loop's edge waiter registered (Linux: /proc fdinfo)."""
    waiter: Any = waiter_for(loop)
    epfd = waiter._epoll.fileno()
    text = Path(f"/proc/self/fdinfo/{epfd}").read_text()
    return [int(line.split()[1]) for line in text.splitlines() if line.startswith("tfd:")]


@edge_only
@pytest.mark.asyncio
async def test_one_registration_per_descriptor_until_closed() -> None:
    loop = asyncio.get_running_loop()
    if type(waiter_for(loop)).__name__ != "EdgeWaiter":
        pytest.skip("not the edge waiter")
    sock, peer = await peer_pair()
    fd = sock.fileno()
    with peer:
        for i in range(20):  # request/response: each read waits
            assert await waited_read(sock, peer, b"%d" % i, 1024) == b"%d" % i
            await sock.sendall(b"ok")
            assert peer.recv(10) == b"ok"
        assert registered(loop).count(fd) == 1
        sock.close()
        assert fd not in registered(loop)


@edge_only
def test_a_loop_first_used_with_no_descriptor_left_gets_the_readiness_waiter() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    loop = asyncio.new_event_loop()
    held: list[int] = []
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 512), hard))
        try:
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        assert type(waiter_for(loop)).__name__ == "ReadinessWaiter"
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        loop.close()


@edge_only
def test_loop_after_loop_keeps_one_epoll() -> None:
    """The edge waiter of a closed loop lets its descriptor go when the next loop gets
    its waiter, not when the closed loop is collected."""

    async def exchange() -> None:
        a, b = asocket.socketpair()
        with a, b:
            async with Tasks() as tasks:
                reader = tasks.spawn(b.recv(10))
                await asyncio.sleep(0.01)
                await a.sendall(b"x")
                assert await reader.join(WAIT) == b"x"

    asyncio.run(exchange())
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        asyncio.run(exchange())
    assert len(os.listdir("/proc/self/fd")) <= before
