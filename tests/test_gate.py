"""The sync face's close-while-blocked protocol (``asocket._gate``), on its own: real
raw sockets and threads, no face around it."""

from __future__ import annotations

import errno
import socket
import threading
import time
from typing import Any

import pytest

from asocket._gate import Gate
from asocket._ops import RECV

WAIT = 5.0


def blocked_in(gate: Gate, fn: Any, *args: Any) -> tuple[threading.Thread, list[Any]]:
    """Run ``gate.call(RECV, fn, *args)`` in a thread; wait until it is inside the gate."""
    out: list[Any] = []

    def target() -> None:
        try:
            out.append(gate.call(RECV, fn, *args))
        except BaseException as exc:
            out.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    deadline = time.monotonic() + WAIT
    while not gate._inside and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(0.05)  # now in the kernel
    return thread, out


def test_close_wakes_a_thread_blocked_in_the_kernel_with_ebadf() -> None:
    a, b = socket.socketpair()
    gate = Gate(b)
    with a:
        thread, out = blocked_in(gate, b.recv, 10)
        gate.close(b)
        thread.join(WAIT)
        assert not thread.is_alive()
        assert isinstance(out[0], OSError) and out[0].errno == errno.EBADF
        assert b.fileno() == -1


def test_the_last_thread_out_closes_the_descriptor() -> None:
    a, b = socket.socketpair()
    gate = Gate(b)
    with a:
        fd = b.fileno()
        threads = [blocked_in(gate, b.recv, 10)[0] for _ in range(3)]
        gate.close(b)
        for thread in threads:
            thread.join(WAIT)
        assert gate._pending == [] and gate._inside == []
        with pytest.raises(OSError) as info:
            socket.socket(fileno=fd).close()  # already closed by the gate
        assert info.value.errno == errno.EBADF


def test_close_with_nobody_inside_closes_at_once() -> None:
    a, b = socket.socketpair()
    gate = Gate(b)
    with a:
        gate.close(b)
        assert b.fileno() == -1 and gate._pending == []


def test_an_empty_read_after_close_is_the_stdlibs_not_ebadf() -> None:
    a, b = socket.socketpair()
    gate = Gate(b)
    with a:
        gate.close(b)
        assert gate.call(RECV, b.recv, 0) == b.recv(0) == b""  # as the closed stdlib


def test_a_call_entering_while_close_is_under_way_is_refused() -> None:
    a, b = socket.socketpair()
    gate = Gate(b)
    with a, b:
        gate.closing = True  # close() has begun in another thread, fd still open
        with pytest.raises(OSError) as info:
            gate.call(RECV, b.recv, 10)
        assert info.value.errno == errno.EBADF
        assert gate._inside == []
