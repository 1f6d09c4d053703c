"""The asyncio waiters' deadlines (``_waiters.loop.Deadlines``) driven by fakes: a loop
that records its one timer, futures, and a virtual clock.

What must hold: a wait fails at its deadline and never before (whatever the loop's
timer does), in deadline order, and leaves its fd's list then; the loop timer is
armed only for a deadline earlier than the one it is armed for; ended waits leave
the heap, so it never grows with the number of waits, even behind a long deadline.
The same behaviour on real loops, every backend: ``test_async_modes.py`` (many
deadlines at once).
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

import asocket
from asocket._waiters.current import waiter_for
from asocket._waiters.loop import Deadlines


class Timer:
    def __init__(self, delay: float, callback: Any) -> None:
        self.delay = delay
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """Records ``call_later``; the test fires the timer itself."""

    def __init__(self) -> None:
        self.timers: list[Timer] = []

    def call_later(self, delay: float, callback: Any) -> Timer:
        timer = Timer(delay, callback)
        self.timers.append(timer)
        return timer

    @property
    def timer(self) -> Timer:
        live = [t for t in self.timers if not t.cancelled]
        assert len(live) <= 1, "one timer per waiter"
        assert live, "no timer armed"
        return live[0]

    def fire(self) -> None:
        """The loop runs the timer (it is spent)."""
        timer = self.timer
        timer.cancelled = True
        timer.callback()


class Future:
    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.finished = False
        self.retrieved = False

    def done(self) -> bool:
        return self.finished

    def set_exception(self, exc: BaseException) -> None:
        assert not self.finished
        self.error = exc
        self.finished = True

    def exception(self) -> BaseException | None:
        self.retrieved = True
        return self.error


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Expired(list[tuple[int, int, Future]]):
    """What the waiter is told of each wait that timed out: (fd, event, future)."""

    def __call__(self, fd: int, event: int, fut: Future) -> None:
        self.append((fd, event, fut))


def make() -> tuple[Deadlines, FakeLoop, Clock, Expired]:
    loop, clock, expired = FakeLoop(), Clock(), Expired()
    return Deadlines(loop, clock, expired), loop, clock, expired  # type: ignore[arg-type]


def add(deadlines: Deadlines, clock: Clock, timeout: float, fd: int = 3) -> Future:
    fut = Future()
    deadlines.add(fut, clock.now + timeout, fd, 0)  # type: ignore[arg-type]
    return fut


def test_one_timer_armed_only_for_an_earlier_deadline() -> None:
    deadlines, loop, clock, _ = make()
    add(deadlines, clock, 5.0)
    add(deadlines, clock, 7.0)  # later: the timer stays
    assert len(loop.timers) == 1 and loop.timer.delay == 5.0
    add(deadlines, clock, 1.0)  # earlier: re-armed
    assert len(loop.timers) == 2 and loop.timer.delay == 1.0


def test_waits_fail_at_their_deadlines_in_order_never_before() -> None:
    deadlines, loop, clock, expired = make()
    a, b, c = (add(deadlines, clock, t, fd) for fd, t in enumerate((3.0, 1.0, 2.0)))
    clock.now += 0.999  # the loop's clock ran ahead (uvloop caches it): fired early
    loop.fire()
    assert not (a.done() or b.done() or c.done())
    assert abs(loop.timer.delay - 0.001) < 1e-9  # re-armed for what is left
    clock.now += 0.001
    loop.fire()
    assert b.done() and not (a.done() or c.done())
    assert isinstance(b.error, TimeoutError) and str(b.error) == "timed out"
    assert b.retrieved  # (its task may have moved on: asyncio logs nothing)
    assert loop.timer.delay == 1.0
    clock.now += 5.0
    loop.fire()  # every deadline passed: both fail, nothing is armed
    assert a.done() and c.done() and a.error is not c.error
    assert all(t.cancelled for t in loop.timers)
    assert not deadlines._heap
    assert expired == [(1, 0, b), (2, 0, c), (0, 0, a)]  # each leaves its fd's list


def test_ended_waits_are_skipped_and_leave_the_heap() -> None:
    deadlines, loop, clock, expired = make()
    a = add(deadlines, clock, 1.0)
    b = add(deadlines, clock, 2.0)
    a.finished = True  # woken: its task's frame awaited it, nothing more to do
    add(deadlines, clock, 3.0)  # a is at the top: it leaves
    assert len(deadlines._heap) == 2
    clock.now += 1.0
    loop.fire()  # armed for a's deadline: only re-arms for b's
    assert not b.done() and loop.timer.delay == 1.0
    b.finished = True  # woken in this iteration, its task not yet run: skipped
    clock.now += 1.0
    loop.fire()
    assert b.error is None and not expired and len(deadlines._heap) == 1


def test_the_heap_stays_small_behind_a_long_deadline() -> None:
    deadlines, _loop, clock, _ = make()
    idle = add(deadlines, clock, 3600.0)  # an idle connection's wait, at the top
    for _ in range(10_000):  # a busy connection's waits, each woken at once
        add(deadlines, clock, 5.0).finished = True
        assert len(deadlines._heap) <= 2 * 2 + 64 + 1
        clock.now += 0.0001
    assert not idle.done()


def test_close_stops_the_timer() -> None:
    deadlines, loop, clock, _ = make()
    add(deadlines, clock, 1.0)
    timer = loop.timer
    deadlines.close()
    assert timer.cancelled
    deadlines.close()  # twice: nothing more


def test_equal_deadlines_both_fail() -> None:
    """Entries with one deadline never compare their futures (which cannot be ordered)."""
    deadlines, loop, clock, _ = make()
    futs = [add(deadlines, clock, 1.0) for _ in range(3)]
    clock.now += 1.0
    loop.fire()
    assert all(fut.done() for fut in futs)


def test_on_a_real_loop_a_timed_out_wait_leaves_nothing_behind() -> None:
    """asyncio's loop: after a timeout the fd's list holds no future (its exception's
    traceback would keep the caller's frames), and the loop logs nothing."""
    logged: list[dict[str, Any]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: logged.append(context))
        a, b = asocket.socketpair()
        with a, b:
            b.settimeout(0.01)
            for _ in range(3):
                with pytest.raises(TimeoutError):
                    await b.recv(1)
            entry = waiter_for(loop)._fds[b.fileno()]
            assert entry.waiters == [[], []]
            await a.send(b"x")
            assert await b.recv(1) == b"x"

    asyncio.run(main())
    gc.collect()
    assert not logged
