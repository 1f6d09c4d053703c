"""Buffered files on the async face: ``sock.makefile()`` (API.md "Buffered files on the
async face"). Every test runs one body on each backend: the loop matrix and trio (see
``conftest.py``)."""

from __future__ import annotations

import gc
import io
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from _async_helpers import WAIT, Tasks, bounded, cancelled, drain, fill, small_buffers, tcp_pair

import asocket

pytestmark = pytest.mark.anyio


async def send(sock: asocket.socket, data: bytes) -> None:
    await bounded(sock.sendall(data))


@pytest.fixture
async def pair(anyio_backend: Any) -> AsyncIterator[tuple[asocket.socket, asocket.socket]]:
    a, b = asocket.socketpair()
    try:
        yield a, b
    finally:
        gc.collect()  # files a test left to the garbage collector release their socket
        a.close()
        b.close()


Pair = tuple[asocket.socket, asocket.socket]


# -- reading ---------------------------------------------------------------------


async def test_readline_lines_then_last_partial_then_eof(pair: Pair) -> None:
    a, b = pair
    f = a.makefile("rb")
    await send(b, b"one\ntwo\nlast")
    b.shutdown(asocket.SHUT_WR)
    assert await bounded(f.readline()) == b"one\n"
    assert await bounded(f.readline()) == b"two\n"
    assert await bounded(f.readline()) == b"last"
    assert await bounded(f.readline()) == b""
    f.close()


async def test_readline_waits_for_the_rest_of_a_line(pair: Pair) -> None:
    async with Tasks() as tasks:
        a, b = pair
        f = a.makefile("rb")
        reader = tasks.spawn(f.readline())
        await send(b, b"hel")
        await anyio.sleep(0.01)
        assert not reader.done()
        await send(b, b"lo\nnext")
        assert await reader.join() == b"hello\n"
        assert f.take_buffered() == b"next"


async def test_readline_size(pair: Pair) -> None:
    a, b = pair
    f = a.makefile("rb")
    await send(b, b"abcdef\nxy\n")
    assert await bounded(f.readline(4)) == b"abcd"
    assert await bounded(f.readline(10)) == b"ef\n"
    assert await bounded(f.readline(0)) == b""
    assert await bounded(f.readline(None)) == b"xy\n"


async def test_readline_long_line_no_hidden_limit(pair: Pair) -> None:
    async with Tasks() as tasks:
        a, b = pair
        f = a.makefile("rb")
        line = b"x" * 300_000 + b"\n"
        writer = tasks.spawn(send(b, line + b"tail"))
        assert await bounded(f.readline()) == line
        await writer.join()
        assert await bounded(f.read(4)) == b"tail"


async def test_async_for_lines(pair: Pair) -> None:
    async with Tasks() as tasks:
        a, b = pair
        f = a.makefile("rb")
        lines = [b"%d\n" % i for i in range(1000)]
        writer = tasks.spawn(send(b, b"".join(lines) + b"end"))
        got = []

        async def collect() -> None:
            async for line in f:
                got.append(line)
                if line == b"999\n":
                    b.shutdown(asocket.SHUT_WR)

        await writer.join()
        await bounded(collect())
        assert got == [*lines, b"end"]


async def test_read_n_waits_for_n_bytes_or_eof(pair: Pair) -> None:
    async with Tasks() as tasks:
        a, b = pair
        f = a.makefile("rb")
        reader = tasks.spawn(f.read(10))
        await send(b, b"12345")
        await anyio.sleep(0.01)
        assert not reader.done()
        await send(b, b"67890abc")
        assert await reader.join() == b"1234567890"
        b.shutdown(asocket.SHUT_WR)
        assert await bounded(f.read(10)) == b"abc"
        assert await bounded(f.read(10)) == b""


async def test_read_all_until_eof(pair: Pair) -> None:
    async with Tasks() as tasks:
        a, b = pair
        f = a.makefile("rb")
        data = os.urandom(200_000)
        writer = tasks.spawn(send(b, data))
        await f.peek()
        await writer.join()
        b.shutdown(asocket.SHUT_WR)
        assert await bounded(f.read()) == data
        assert await bounded(f.read(-1)) == b""


async def test_read1_one_receive(pair: Pair) -> None:
    a, b = pair
    f = a.makefile("rb")
    await send(b, b"abc")
    assert await bounded(f.read1(100)) == b"abc"
    await send(b, b"defgh")
    assert await bounded(f.read1(2)) == b"de"
    assert await bounded(f.read1()) == b"fgh"  # from the buffer, no receive
    assert await bounded(f.read1(0)) == b""
    b.shutdown(asocket.SHUT_WR)
    assert await bounded(f.read1()) == b""


async def test_readinto_fills_or_eof(pair: Pair) -> None:
    async with Tasks() as tasks:
        a, b = pair
        f = a.makefile("rb")
        await send(b, b"head\n0123")
        assert await bounded(f.readline()) == b"head\n"
        buf = bytearray(8)
        reader = tasks.spawn(f.readinto(buf))
        await anyio.sleep(0.01)
        assert not reader.done()
        await send(b, b"4567xyz")
        assert await reader.join() == 8
        assert buf == b"01234567"
        b.shutdown(asocket.SHUT_WR)
        assert await bounded(f.readinto(memoryview(buf)[:5])) == 3
        assert buf[:3] == b"xyz"
        assert await bounded(f.readinto1(buf)) == 0


async def test_peek_leaves_bytes(pair: Pair) -> None:
    a, b = pair
    f = a.makefile("rb")
    await send(b, b"peekaboo")
    assert (await bounded(f.peek(4))).startswith(b"peek")
    assert await bounded(f.read(8)) == b"peekaboo"


async def test_readexactly_and_eof_partial(pair: Pair) -> None:
    async with Tasks() as tasks:
        a, b = pair
        f = a.makefile("rb")
        frames = [os.urandom(n) for n in (0, 1, 7, 70_000, 3)]
        writer = tasks.spawn(
            send(
                b, b"".join(len(x).to_bytes(4, "big") + x for x in frames) + b"\x00\x00\x00\x09abc"
            )
        )
        for frame in frames:
            size = int.from_bytes(await bounded(f.readexactly(4)), "big")
            assert await bounded(f.readexactly(size)) == frame
        await writer.join()
        size = int.from_bytes(await bounded(f.readexactly(4)), "big")
        b.shutdown(asocket.SHUT_WR)
        with pytest.raises(asocket.IncompleteReadError) as info:
            await bounded(f.readexactly(size))
        assert isinstance(info.value, EOFError)
        assert info.value.partial == b"abc"
        assert info.value.expected == 9
        assert await bounded(f.read()) == b""
        with pytest.raises(ValueError):
            await f.readexactly(-1)


async def test_readuntil_separators(pair: Pair) -> None:
    a, b = pair
    f = a.makefile("rb")
    await send(b, b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody;line\nend|")
    assert await bounded(f.readuntil(b"\r\n\r\n")) == b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    assert await bounded(f.readuntil((b";", b"\n"))) == b"body;"
    assert await bounded(f.readuntil()) == b"line\n"
    assert await bounded(f.readuntil(bytearray(b"|"))) == b"end|"
    with pytest.raises(ValueError):
        await f.readuntil(b"")


async def test_readuntil_max_bytes_raises_at_once_and_keeps_buffer(pair: Pair) -> None:
    a, b = pair
    f = a.makefile("rb")
    await send(b, b"x" * 100)
    with pytest.raises(asocket.LimitOverrunError) as info:
        await bounded(f.readuntil(b"\n", max_bytes=50))
    assert isinstance(info.value, ValueError)
    await send(b, b"\n")
    assert await bounded(f.readuntil(b"\n", max_bytes=1000)) == b"x" * 100 + b"\n"


async def test_readuntil_default_max_bytes_is_in_the_signature() -> None:
    import inspect

    default = inspect.signature(asocket.AsyncSocketFile.readuntil).parameters["max_bytes"].default
    assert default == 65536


async def test_readuntil_eof_partial(pair: Pair) -> None:
    a, b = pair
    f = a.makefile("rb")
    await send(b, b"no separator")
    b.shutdown(asocket.SHUT_WR)
    with pytest.raises(asocket.IncompleteReadError) as info:
        await bounded(f.readuntil(b"\r\n"))
    assert info.value.partial == b"no separator"
    assert info.value.expected is None


# -- modes per call -----------------------------------------------------------------


async def test_nonblocking_raises_with_nothing_consumed(pair: Pair) -> None:
    a, b = pair
    a.setblocking(False)
    f = a.makefile("rb")
    with pytest.raises(BlockingIOError):
        await f.readline()
    await send(b, b"partial")
    await anyio.sleep(0.01)
    for call in (f.readline(), f.readexactly(10), f.read(10), f.readuntil(b";")):
        with pytest.raises(BlockingIOError):
            await call
    assert f.take_buffered() == b"partial"
    await send(b, b"\n")
    await anyio.sleep(0.01)
    assert await f.readline() == b"\n"


async def test_timeout_keeps_what_was_read(pair: Pair) -> None:
    a, b = pair
    a.settimeout(0.05)
    f = a.makefile("rb")
    await send(b, b"\x00\x00\x00\x0aabcd")  # a 10-byte frame, 4 bytes of it sent
    size = int.from_bytes(await f.readexactly(4), "big")
    with pytest.raises(TimeoutError) as info:
        await f.readexactly(size)
    assert str(info.value) == "timed out"
    for call in (f.readline(), f.read(10), f.readuntil(b";"), f.peek(100)):
        try:
            assert await call == b"abcd"  # peek returns the buffered bytes
        except TimeoutError:
            pass
    await send(b, b"efghij")
    a.settimeout(WAIT)
    assert await f.readexactly(size) == b"abcdefghij"


async def test_readinto_timeout_keeps_bytes(pair: Pair) -> None:
    a, b = pair
    a.settimeout(0.05)
    f = a.makefile("rb")
    await send(b, b"abc")
    buf = bytearray(6)
    with pytest.raises(TimeoutError):
        await f.readinto(buf)
    await send(b, b"def")
    a.settimeout(WAIT)
    assert await f.read(6) == b"abcdef"


async def test_cancel_keeps_every_byte(pair: Pair) -> None:
    async with Tasks() as tasks:
        a, b = pair
        f = a.makefile("rb")
        await send(b, b"\x00\x00\x00\x08abc")
        size = int.from_bytes(await bounded(f.readexactly(4)), "big")
        for call in (f.readexactly(size), f.readline(), f.readuntil(b"|"), f.read(8)):
            await cancelled(await tasks.start(call))
        await send(b, b"defgh")
        assert await bounded(f.readexactly(size)) == b"abcdefgh"


async def test_cancellation_storm_while_lines_stream_in(pair: Pair) -> None:
    async with Tasks() as tasks:
        a, b = pair
        f = a.makefile("rb")
        count = 3000
        lines = [b"line %d %s\n" % (i, b"z" * (i % 37)) for i in range(count)]

        async def writer() -> None:
            for i in range(0, count, 50):
                await b.sendall(b"".join(lines[i : i + 50]))
                await anyio.sleep(0)

        task = tasks.spawn(writer())
        got: list[bytes] = []
        give_up = time.monotonic() + 30  # a lost byte would make a line never end
        while len(got) < count:
            try:
                with anyio.fail_after(0.0005):
                    got.append(await f.readline())
            except TimeoutError:
                pass
            assert time.monotonic() < give_up, f"stuck after {len(got)} lines"
        await task.join()
        assert got == lines


async def test_timeout_mid_frame_storm(pair: Pair) -> None:
    async with Tasks() as tasks:
        a, b = pair
        a.settimeout(0.001)
        f = a.makefile("rb")
        frames = [os.urandom(i * 97 % 5000) for i in range(200)]
        data = b"".join(len(x).to_bytes(4, "big") + x for x in frames)

        async def writer() -> None:
            for i in range(0, len(data), 1000):
                await b.sendall(data[i : i + 1000])
                await anyio.sleep(0.0005)

        task = tasks.spawn(writer())
        got: list[bytes] = []
        size: int | None = None
        give_up = time.monotonic() + 30  # a lost byte would make the frames never end
        while len(got) < len(frames):
            assert time.monotonic() < give_up, f"stuck after {len(got)} frames"
            try:
                if size is None:
                    size = int.from_bytes(await f.readexactly(4), "big")
                got.append(await f.readexactly(size))
                size = None
            except TimeoutError:
                pass
        await task.join()
        assert got == frames


async def test_one_deadline_for_the_whole_call(pair: Pair) -> None:
    # Bytes trickling in faster than the timeout do not extend a readexactly.
    async with Tasks() as tasks:
        a, b = pair
        a.settimeout(0.2)
        f = a.makefile("rb")

        async def trickle() -> None:
            for _ in range(100):
                await b.sendall(b"x")
                await anyio.sleep(0.02)

        tasks.spawn(trickle())
        with pytest.raises(TimeoutError):
            await f.readexactly(100)
        assert len(f.take_buffered()) < 100


async def test_concurrent_reader_refused(pair: Pair) -> None:
    async with Tasks() as tasks:
        a, b = pair
        f = a.makefile("rb")
        first = tasks.spawn(f.readline())
        await anyio.sleep(0.01)
        with pytest.raises(RuntimeError):
            await f.readline()
        for call in (f.readinto(bytearray(4)), f.read(4), f.readexactly(4), f.peek()):
            with pytest.raises(RuntimeError):
                await call
        await send(b, b"ok\n")
        assert await first.join() == b"ok\n"


# -- writing -----------------------------------------------------------------------


async def test_write_buffers_until_flush(pair: Pair) -> None:
    a, b = pair
    w = a.makefile("wb")
    r = b.makefile("rb")
    assert await w.write(b"hello ") == 6
    assert await w.write(bytearray(b"world\n")) == 6
    b.setblocking(False)
    with pytest.raises(BlockingIOError):
        await r.readline()
    await bounded(w.flush())
    b.setblocking(True)
    assert await bounded(r.readline()) == b"hello world\n"
    await w.writelines([b"a", b"b\n"])
    await w.flush()
    assert await bounded(r.readline()) == b"ab\n"


async def test_write_sends_once_the_buffer_fills(pair: Pair) -> None:
    a, b = pair
    w = a.makefile("wb", buffering=16)
    r = b.makefile("rb")
    await w.write(b"0123456789")
    await w.write(b"abcdefghij\n")  # 21 bytes >= 16: sent
    assert await bounded(r.readline()) == b"0123456789abcdefghij\n"
    w0 = a.makefile("wb", buffering=0)  # write-through
    await w0.write(b"now\n")
    assert await bounded(r.readline()) == b"now\n"


async def test_flush_timeout_keeps_unsent_bytes() -> None:
    async with Tasks() as tasks:
        a, b = await tcp_pair()
        w = a.makefile("wb")
        try:
            small_buffers(a, b)
            filled = await fill(a)
            a.settimeout(0.05)
            await w.write(b"A" * 30_000)  # under the buffer size: no send yet
            await w.write(b"B" * 30_000)
            with pytest.raises(TimeoutError):
                await w.flush()
            reader = tasks.spawn(drain(b, idle=0.5))
            a.settimeout(WAIT)
            await bounded(w.flush())
            a.shutdown(asocket.SHUT_WR)
            assert await reader.join() == filled + 60_000
        finally:
            w.close()
            a.close()
            b.close()


async def test_close_does_not_flush_aclose_does(pair: Pair) -> None:
    a, b = pair
    r = b.makefile("rb")
    w = a.makefile("wb")
    await w.write(b"dropped\n")
    w.close()
    async with a.makefile("wb") as w2:
        await w2.write(b"kept\n")
    assert await bounded(r.readline()) == b"kept\n"
    w3 = a.makefile("wb")
    await w3.write(b"also\n")
    await w3.aclose()
    assert await bounded(r.readline()) == b"also\n"


async def test_read_write_file(pair: Pair) -> None:
    a, b = pair
    fa = a.makefile("rwb")
    fb = b.makefile("rwb")
    await fa.write(b"ping\n")
    await fa.flush()
    assert await bounded(fb.readline()) == b"ping\n"
    await fb.write(b"pong\n")
    await fb.flush()
    assert await bounded(fa.readline()) == b"pong\n"
    assert fa.readable() and fa.writable() and not fa.seekable()


# -- files and their socket ------------------------------------------------------------


async def test_descriptor_open_until_socket_and_every_file_close(pair: Pair) -> None:
    a, b = pair
    r = a.makefile("rb")
    w = a.makefile("wb")  # two files on one socket: allowed, as in the stdlib
    fd = a.fileno()
    a.close()
    assert "[closed]" in repr(a)
    os.fstat(fd)  # still open
    await w.write(b"still\n")
    await w.flush()
    await send(b, b"works\n")
    assert await bounded(r.readline()) == b"works\n"
    r.close()
    os.fstat(fd)
    w.close()
    assert a.fileno() == -1
    with pytest.raises(OSError):
        await b.sendall(b"x" * 1_000_000)  # the peer is gone
    assert await bounded(b.recv(100)) == b"still\n"


async def test_file_closed_first_then_socket(pair: Pair) -> None:
    a, _ = pair
    f = a.makefile("rb")
    f.close()
    f.close()  # idempotent
    assert f.closed
    assert a.fileno() != -1
    a.close()
    assert a.fileno() == -1


async def test_closing_the_last_file_wakes_a_waiting_reader(pair: Pair) -> None:
    async with Tasks() as tasks:
        a, _ = pair
        f = a.makefile("rb")
        g = a.makefile("rb")
        reader = tasks.spawn(f.readline())
        await anyio.sleep(0.01)
        a.close()
        g.close()
        f.close()
        with pytest.raises(OSError):
            await reader.join()


async def test_garbage_collected_file_releases_the_socket(pair: Pair) -> None:
    a, _ = pair
    a.makefile("rb")
    gc.collect()
    a.close()
    assert a.fileno() == -1


async def test_closed_file_raises_value_error(pair: Pair) -> None:
    a, _ = pair
    f = a.makefile("rwb")
    f.close()
    for call in (f.readline(), f.read(1), f.readexactly(1), f.read1(), f.peek(), f.write(b"x")):
        with pytest.raises(ValueError, match="closed file"):
            await call
    with pytest.raises(ValueError):
        f.fileno()
    await f.aclose()


async def test_text_mode_refused_with_a_decode_hint(pair: Pair) -> None:
    a, _ = pair
    for mode in ("r", "w", "rw"):
        with pytest.raises(ValueError, match="decode"):
            a.makefile(mode)
    with pytest.raises(ValueError, match="decode"):
        a.makefile("rb", encoding="utf-8")
    with pytest.raises(ValueError, match="invalid mode"):
        a.makefile("rb+")
    assert a._io_refs == 0  # type: ignore[attr-defined]


async def test_wrong_direction_unsupported(pair: Pair) -> None:
    a, _ = pair
    r = a.makefile("rb")
    w = a.makefile("wb")
    with pytest.raises(io.UnsupportedOperation):
        await r.write(b"x")
    with pytest.raises(io.UnsupportedOperation):
        await w.readline()
    assert r.mode == "rb" and w.mode == "wb"
    assert r.name == a.fileno()


async def test_take_buffered_for_an_upgrade(pair: Pair) -> None:
    # STARTTLS-style: read the reply line, take what came after it, continue raw.
    a, b = pair
    f = a.makefile("rb")
    await send(b, b"220 ready\r\nEARLY")
    assert await bounded(f.readuntil(b"\r\n")) == b"220 ready\r\n"
    early = f.take_buffered()
    f.close()
    await send(b, b"LATE")
    rest = early
    while len(rest) < 9:
        rest += await bounded(a.recv(100))
    assert rest == b"EARLYLATE"


async def test_cancelled_flush_keeps_unsent_bytes() -> None:
    async with Tasks() as tasks:
        a, b = await tcp_pair()
        w = a.makefile("wb")
        try:
            small_buffers(a, b)
            filled = await fill(a)
            await w.write(b"C" * 50_000)
            await cancelled(await tasks.start(w.flush()))
            reader = tasks.spawn(drain(b, idle=0.5))
            await bounded(w.flush())
            a.shutdown(asocket.SHUT_WR)
            assert await reader.join() == filled + 50_000
        finally:
            w.close()
            a.close()
            b.close()


async def test_one_flusher_at_a_time_writes_join_it() -> None:
    async with Tasks() as tasks:
        a, b = await tcp_pair()
        w = a.makefile("wb", buffering=1000)
        try:
            small_buffers(a, b)
            filled = await fill(a)
            await w.write(b"x" * 999)
            flusher = await tasks.start(w.write(b"y"))  # full: this write flushes
            with pytest.raises(RuntimeError):
                await w.flush()
            assert await w.write(b"z" * 5000) == 5000  # only buffered: the flusher sends it
            reader = tasks.spawn(drain(b, idle=0.5))
            assert await flusher.join() == 1
            a.shutdown(asocket.SHUT_WR)
            assert await reader.join() == filled + 6000
        finally:
            w.close()
            a.close()
            b.close()


async def test_lines_and_frames_interleaved(pair: Pair) -> None:
    # Lines read in a row are split ahead; any other read must see the same bytes.
    async with Tasks() as tasks:
        a, b = pair
        f = a.makefile("rb")
        lines = [b"%d\r\n" % i for i in range(300)]
        frame = b"not\na\nline\n"
        stream = b"".join(lines) + frame + b"".join(lines) + b"tail"
        writer = tasks.spawn(send(b, stream))
        assert [await bounded(f.readline()) for _ in range(300)] == lines
        assert await bounded(f.readexactly(4)) == frame[:4]
        assert await bounded(f.read(len(frame) - 4)) == frame[4:]
        assert [await bounded(f.readuntil(b"\r\n")) for _ in range(3)] == lines[:3]
        assert [await bounded(f.readline()) for _ in range(297)] == lines[3:]
        assert await bounded(f.read1(2)) == b"ta"
        assert await bounded(f.peek()) == b"il"
        await writer.join()


async def test_end_of_file_cases(pair: Pair) -> None:
    a, b = pair
    f = a.makefile("rb")
    b.shutdown(asocket.SHUT_WR)
    assert await bounded(f.readline()) == b""
    assert [line async for line in f] == []
    assert await bounded(f.read()) == b""
    assert await bounded(f.read(5)) == b""
    assert await bounded(f.read1(5)) == b""
    assert await bounded(f.peek()) == b""
    assert await bounded(f.readexactly(0)) == b""
    assert await bounded(f.readinto(bytearray(4))) == 0
    with pytest.raises(asocket.IncompleteReadError) as info:
        await bounded(f.readexactly(1))
    assert (info.value.partial, info.value.expected) == (b"", 1)
    with pytest.raises(asocket.IncompleteReadError) as until:
        await bounded(f.readuntil(b"\n"))
    assert (until.value.partial, until.value.expected) == (b"", None)


async def test_readinto_any_buffer_format(pair: Pair) -> None:
    import array

    a, b = pair
    f = a.makefile("rb")
    await send(b, bytes(range(16)))
    target = array.array("i", [0, 0])  # 8 bytes
    assert await bounded(f.readinto(target)) == 8
    assert target.tobytes() == bytes(range(8))
    assert await bounded(f.readinto1(memoryview(bytearray(100)))) == 8
