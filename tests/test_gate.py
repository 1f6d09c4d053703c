"""The sync face's close-while-blocked protocol (``asocket._gate``), on its own: real
raw sockets and threads, no face around it."""

from __future__ import annotations

import errno
import linecache
import socket
import sys
import threading
import time
from typing import Any

import pytest

import asocket.sync
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
        assert gate._pending == [] and not gate._inside
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
        assert not gate._inside


def _line(code: Any, text: str) -> int:
    """The line number of the first line of ``code``'s function that reads ``text``
    (the gate's compiled functions keep their source in ``linecache``)."""
    lines = linecache.getlines(code.co_filename)
    first = code.co_firstlineno
    return next(n for n in range(first, len(lines) + 1) if lines[n - 1].strip() == text)


def _pause_at(code: Any, lineno: int, reached: threading.Event, resume: threading.Event) -> Any:
    """A trace function that holds its thread at ``lineno`` of ``code`` until ``resume``."""

    def trace(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code is code:
            if event == "line" and frame.f_lineno == lineno:
                reached.set()
                resume.wait(WAIT)
            return trace
        return None

    return trace


@pytest.mark.parametrize("through", ["Gate.call", "SyncSocket.recv"])
def test_a_call_entering_as_close_looks_is_never_left_blocked(through: str) -> None:
    """The race of a call entering the gate with close(): the call is held just
    before it enters ``_inside``; close() then finds nobody inside and is held just
    before it closes the descriptor; then the call goes on, then close(). The call
    must not block on the descriptor (closing it would not wake it): it sees
    ``closing`` and raises EBADF. Trace functions hold each thread at its line, so
    the interleaving is exact. Run on the gate's own call and on a sync-face method
    compiled from the same protocol (``gated``)."""
    a, b = socket.socketpair()
    if through == "Gate.call":
        gate = Gate(a)
        code = Gate.call.__code__

        def call() -> Any:
            return gate.call(RECV, a.recv, 10)

        def close() -> None:
            gate.close(a)
    else:
        sock = asocket.sync.socket(fileno=a.detach())
        code = asocket.sync.socket.recv.__code__

        def call() -> Any:
            return sock.recv(10)

        def close() -> None:
            sock.close()

    call_at = _line(code, "inside.append(None)")
    close_at = _line(Gate.close.__code__, "raw.close()")
    call_there, call_go = threading.Event(), threading.Event()
    close_there, close_go = threading.Event(), threading.Event()
    out: list[Any] = []

    def caller() -> None:
        sys.settrace(_pause_at(code, call_at, call_there, call_go))
        try:
            out.append(call())
        except BaseException as exc:
            out.append(exc)
        finally:
            sys.settrace(None)

    def closer() -> None:
        sys.settrace(_pause_at(Gate.close.__code__, close_at, close_there, close_go))
        try:
            close()
        finally:
            sys.settrace(None)

    calling = threading.Thread(target=caller, daemon=True)
    closing = threading.Thread(target=closer, daemon=True)
    try:
        calling.start()
        assert call_there.wait(WAIT)
        closing.start()
        assert close_there.wait(WAIT), "close() saw the call inside: not this race"
        call_go.set()
        calling.join(0.5)  # long enough to block in recv() if it is going to
        close_go.set()
        closing.join(WAIT)
        calling.join(WAIT)
        assert not calling.is_alive(), "the call blocked on a descriptor close() closed"
        assert isinstance(out[0], OSError) and out[0].errno == errno.EBADF, out
    finally:
        call_go.set()
        close_go.set()
        b.close()
