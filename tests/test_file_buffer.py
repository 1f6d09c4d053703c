"""The sans-IO core of the async files (``asocket._file.ReadBuffer``), with fakes.

No socket and no loop: bytes are "received" by writing into the tail that
``space()`` hands out, as ``recv_into`` does.
"""

from __future__ import annotations

import pickle
import random

import pytest

import asocket
from asocket._file import LimitOverrunError, ReadBuffer, separators


def feed(rb: ReadBuffer, data: bytes, need: int = 1) -> None:
    """What one ``recv_into`` of ``data`` into the buffer's tail does."""
    view = rb.space(max(need, 1))
    assert len(view) >= len(data) or len(view) >= need
    n = min(len(view), len(data))
    view[:n] = data[:n]
    rb.received(n)
    if n < len(data):
        feed(rb, data[n:], need)


def test_line_found_and_consumed() -> None:
    rb = ReadBuffer(64)
    feed(rb, b"one\ntwo\nthr")
    assert rb.line() == b"one\n"
    assert rb.line() == b"two\n"
    assert rb.line() is None
    assert len(rb) == 3
    feed(rb, b"ee\n")
    assert rb.line() == b"three\n"
    assert len(rb) == 0


def test_line_size_limits() -> None:
    rb = ReadBuffer(64)
    feed(rb, b"abcdef\nxyz")
    assert rb.line(0) == b""
    assert rb.line(3) == b"abc"
    assert rb.line(10) == b"def\n"
    assert rb.line(2) == b"xy"
    assert rb.line(5) is None  # "z" and maybe more to come
    assert rb.take_all() == b"z"


def test_scan_resumes_where_it_stopped() -> None:
    rb = ReadBuffer(16)
    feed(rb, b"a" * 10)
    assert rb.line() is None
    assert rb._scan == rb._end  # nothing to rescan next time
    feed(rb, b"b" * 10)  # grows: the scan offset moves with the bytes
    assert rb.line() is None
    assert rb._scan == rb._end
    feed(rb, b"\n")
    assert rb.line() == b"a" * 10 + b"b" * 10 + b"\n"


def test_scan_offset_is_per_separator() -> None:
    rb = ReadBuffer(64)
    feed(rb, b"abc\r\nrest")
    assert rb.until((b"\r\n",), 2, 100) == b"abc\r\n"
    feed(rb, b"X")
    assert rb.line() is None  # scanned "restX" for b"\n"
    assert rb.until((b"X",), 1, 100) == b"restX"  # a new separator rescans


def test_until_shortest_of_several_separators() -> None:
    rb = ReadBuffer(64)
    feed(rb, b"aaa\r\nbbb\nccc;")
    seps, longest = separators((b"\r\n", b"\n", b";"))
    assert rb.until(seps, longest, 100) == b"aaa\r\n"
    assert rb.until(seps, longest, 100) == b"bbb\n"
    assert rb.until(seps, longest, 100) == b"ccc;"


def test_until_separator_split_across_receives() -> None:
    rb = ReadBuffer(64)
    feed(rb, b"head\r")
    assert rb.until((b"\r\n",), 2, 100) is None
    feed(rb, b"\nbody")
    assert rb.until((b"\r\n",), 2, 100) == b"head\r\n"


def test_until_limit_raises_and_keeps_the_bytes() -> None:
    rb = ReadBuffer(64)
    feed(rb, b"x" * 9)
    assert rb.until((b"\n",), 1, 10) is None  # 9 < 10: might still end in time
    feed(rb, b"y")
    with pytest.raises(LimitOverrunError) as info:
        rb.until((b"\n",), 1, 10)
    assert isinstance(info.value, ValueError)
    assert info.value.consumed == 10
    assert len(rb) == 10
    assert rb.peek() == b"x" * 9 + b"y"


def test_until_separator_ending_exactly_at_the_limit() -> None:
    rb = ReadBuffer(64)
    feed(rb, b"abcd\r\nmore")
    assert rb.until((b"\r\n",), 2, 6) == b"abcd\r\n"
    feed(rb, b"\r\n")
    with pytest.raises(LimitOverrunError):
        rb.until((b"\r\n",), 2, 5)  # "more\r\n" is 6 bytes
    assert rb.until((b"\r\n",), 2, 6) == b"more\r\n"


def test_separators_validation() -> None:
    with pytest.raises(ValueError):
        separators(b"")
    with pytest.raises(ValueError):
        separators(())
    with pytest.raises(ValueError):
        separators((b"a", b""))
    assert separators(bytearray(b"ab")) == ((b"ab",), 2)
    assert separators((b"a", memoryview(b"bcd"))) == ((b"a", b"bcd"), 3)


def test_space_compacts_before_growing() -> None:
    rb = ReadBuffer(16)
    feed(rb, b"0123456789abcd")
    assert rb.take(12) == b"0123456789ab"
    buf = rb._buf
    view = rb.space(8)  # 2 unread bytes: moved to the front, same bytearray
    assert rb._buf is buf
    assert len(view) == 14
    assert rb.peek() == b"cd"


def test_space_grows_for_a_big_frame_then_shrinks() -> None:
    rb = ReadBuffer(16)
    feed(rb, b"abc")
    rb.space(100)
    assert rb.capacity >= 103
    assert rb.peek() == b"abc"
    rb.take_all()
    rb.space(1)
    assert rb.capacity == 16


def test_empty_buffer_restarts_at_the_front() -> None:
    rb = ReadBuffer(16)
    feed(rb, b"abcdefgh")
    rb.take(8)
    view = rb.space(1)
    assert len(view) == 16


def test_consuming_never_moves_unread_bytes() -> None:
    # A tail handed to a pending receive stays valid while a reader consumes.
    rb = ReadBuffer(32)
    feed(rb, b"line\n")
    tail = rb.space(1)
    assert rb.line() == b"line\n"
    tail[:4] = b"more"
    rb.received(4)
    assert rb.take_all() == b"more"


def test_take_into_and_unread() -> None:
    rb = ReadBuffer(16)
    feed(rb, b"abcdef")
    target = bytearray(4)
    assert rb.take_into(memoryview(target)) == 4
    assert target == b"abcd"
    rb.unread(b"abcd")
    assert rb.peek() == b"abcdef"
    rb.unread(b"Z" * 20)  # more than fits in front: the buffer grows
    assert rb.take_all() == b"Z" * 20 + b"abcdef"


def test_random_chunks_give_the_same_lines() -> None:
    rng = random.Random(7)
    lines = [b"x" * rng.randrange(0, 50) + b"\n" for _ in range(500)]
    stream = b"".join(lines)
    rb = ReadBuffer(32)
    got: list[bytes] = []
    pos = 0
    while pos < len(stream):
        n = rng.randrange(1, 80)
        feed(rb, stream[pos : pos + n])
        pos += n
        while (line := rb.line()) is not None:
            got.append(line)
    assert got == lines


def test_exceptions_pickle_and_subclass() -> None:
    exc = asocket.IncompleteReadError(b"ab", 5)
    assert isinstance(exc, EOFError)
    assert exc.partial == b"ab" and exc.expected == 5
    assert str(exc) == "2 bytes read on a total of 5 expected bytes"
    back = pickle.loads(pickle.dumps(exc))
    assert (back.partial, back.expected) == (b"ab", 5)
    over = pickle.loads(pickle.dumps(asocket.LimitOverrunError("m", 3)))
    assert isinstance(over, ValueError) and over.consumed == 3
    assert str(asocket.IncompleteReadError(b"", None)).endswith("undefined expected bytes")


def test_line_cache_splits_ahead_and_stays_exact() -> None:
    lines = [b"l%d\r\n" % i if i % 3 else b"l%d\n" % i for i in range(2000)]
    rb = ReadBuffer(1 << 16)
    feed(rb, b"".join(lines))
    got = [rb.next_line() for _ in range(10)]
    assert got == lines[:10]
    assert rb._lines  # split ahead after a streak
    assert len(rb) == sum(map(len, lines[10:]))
    assert rb.take(3) == lines[10][:3]  # another read drops the cache...
    assert not rb._lines
    assert rb.next_line() == lines[10][3:]  # ...and the bytes are where they were
    assert [rb.next_line() for _ in range(1989)] == lines[11:]
    assert rb.next_line() is None


def test_line_cache_not_used_with_a_lone_cr() -> None:
    data = b"".join(b"a\rb%d\n" % i for i in range(500))
    rb = ReadBuffer(1 << 16)
    feed(rb, data)
    got = []
    while (line := rb.next_line()) is not None:
        got.append(line)
    assert got == [b"a\rb%d\n" % i for i in range(500)]
    assert not rb._lines


def test_line_cache_with_every_consumer() -> None:
    rng = random.Random(3)
    stream = b"".join(b"%d:%s\n" % (i, b"y" * rng.randrange(30)) for i in range(3000))
    rb = ReadBuffer(4096)
    out = bytearray()
    pos = 0
    while pos < len(stream) or len(rb):
        if pos < len(stream) and (len(rb) < 500 or rng.random() < 0.05):
            n = rng.randrange(1, 3000)
            feed(rb, stream[pos : pos + n])
            pos += n
        choice = rng.randrange(8)
        if choice < 4:
            line = rb.next_line()
            out += line or b""
        elif choice == 4:
            out += rb.take(rng.randrange(20))
        elif choice == 5:
            target = bytearray(rng.randrange(20))
            out += target[: rb.take_into(memoryview(target))]
        elif choice == 6:
            out += rb.until((b":",), 1, 1 << 20) or b""
        else:
            taken = rb.take(rng.randrange(10))
            rb.unread(taken)
        if pos >= len(stream) and b"\n" not in rb.peek():
            out += rb.take_all()
        assert rb.peek() == stream[len(out) : pos]
    assert bytes(out) == stream
