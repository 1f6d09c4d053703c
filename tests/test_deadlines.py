"""The asyncio waiters' deadlines (``_waiters.loop.Deadlines``) driven by fakes: a loop
that records its one timer, futures, and a virtual clock.

What must hold: a wait fails at its deadline and never before (whatever the loop's
timer does), in deadline order; the loop timer is armed only for a deadline earlier
than the one it is armed for; ended waits leave the heap, so it never grows with
the number of waits, even behind a long deadline. The same behaviour on real loops,
every backend: ``test_async_modes.py`` (many deadlines at once).
"""

from __future__ import annotations

from typing import Any

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
        self.exception: BaseException | None = None
        self.finished = False

    def done(self) -> bool:
        return self.finished

    def set_exception(self, exc: BaseException) -> None:
        assert not self.finished
        self.exception = exc
        self.finished = True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make() -> tuple[Deadlines, FakeLoop, Clock]:
    loop, clock = FakeLoop(), Clock()
    return Deadlines(loop, clock), loop, clock  # type: ignore[arg-type]


def add(deadlines: Deadlines, clock: Clock, timeout: float) -> tuple[Future, list[Any]]:
    fut = Future()
    entry = deadlines.add(fut, clock.now + timeout, timeout)  # type: ignore[arg-type]
    return fut, entry


def test_one_timer_armed_only_for_an_earlier_deadline() -> None:
    deadlines, loop, clock = make()
    add(deadlines, clock, 5.0)
    add(deadlines, clock, 7.0)  # later: the timer stays
    assert len(loop.timers) == 1 and loop.timer.delay == 5.0
    add(deadlines, clock, 1.0)  # earlier: re-armed
    assert len(loop.timers) == 2 and loop.timer.delay == 1.0


def test_waits_fail_at_their_deadlines_in_order_never_before() -> None:
    deadlines, loop, clock = make()
    (a, entry_a), (b, entry_b), (c, entry_c) = (add(deadlines, clock, t) for t in (3.0, 1.0, 2.0))
    entries = (entry_b, entry_c, entry_a)
    clock.now += 0.999  # the loop's clock ran ahead (uvloop caches it): fired early
    loop.fire()
    assert not (a.done() or b.done() or c.done())
    assert abs(loop.timer.delay - 0.001) < 1e-9  # re-armed for what is left
    clock.now += 0.001
    loop.fire()
    assert b.done() and not (a.done() or c.done())
    assert isinstance(b.exception, TimeoutError) and str(b.exception) == "timed out"
    assert loop.timer.delay == 1.0
    clock.now += 5.0
    loop.fire()  # every deadline passed: both fail, nothing is armed
    assert a.done() and c.done() and a.exception is not c.exception
    assert all(t.cancelled for t in loop.timers)
    assert not deadlines._heap
    for entry in entries:  # then each failed wait's frame ends it
        deadlines.done(entry)
    assert not deadlines._heap


def test_ended_waits_are_skipped_and_leave_the_heap() -> None:
    deadlines, loop, clock = make()
    a, entry_a = add(deadlines, clock, 1.0)
    b, _ = add(deadlines, clock, 2.0)
    a.finished = True  # woken: the waiter's frame ends it
    deadlines.done(entry_a)
    assert len(deadlines._heap) == 1
    clock.now += 1.0
    loop.fire()  # armed for a's deadline: only re-arms for b's
    assert not b.done() and loop.timer.delay == 1.0
    b.finished = True  # woken in this iteration, its task not yet run: skipped
    clock.now += 1.0
    loop.fire()
    assert b.exception is None and not deadlines._heap


def test_the_heap_stays_small_behind_a_long_deadline() -> None:
    deadlines, _loop, clock = make()
    idle, _ = add(deadlines, clock, 3600.0)  # an idle connection's wait, at the top
    for _ in range(10_000):  # a busy connection's waits, each woken at once
        fut, entry = add(deadlines, clock, 5.0)
        fut.finished = True
        deadlines.done(entry)
        assert len(deadlines._heap) <= 2 * 2 + 64
        clock.now += 0.0001
    assert not idle.done()


def test_close_stops_the_timer() -> None:
    deadlines, loop, clock = make()
    add(deadlines, clock, 1.0)
    timer = loop.timer
    deadlines.close()
    assert timer.cancelled
    deadlines.close()  # twice: nothing more


def test_equal_deadlines_both_fail() -> None:
    """Entries with one deadline never compare their futures (which cannot be ordered)."""
    deadlines, loop, clock = make()
    futs = [add(deadlines, clock, 1.0)[0] for _ in range(3)]
    clock.now += 1.0
    loop.fire()
    assert all(fut.done() for fut in futs)
