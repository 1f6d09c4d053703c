"""Shared pieces of the benchmarks: plans, event loops, socket pairs, tables."""

from __future__ import annotations

import asyncio
import gc
import socket
import statistics
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")
P = TypeVar("P")

LOOP_FACTORIES: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    # On Linux the default loop is the selector loop (epoll), the one asocket's
    # readiness waiter serves; debug mode stays off.
    "asyncio": asyncio.SelectorEventLoop,
    "uvloop": uvloop.new_event_loop,
}


def run_on(loop: str, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` on a fresh loop of kind ``loop`` ("asyncio" or "uvloop")."""
    with asyncio.Runner(loop_factory=LOOP_FACTORIES[loop]) as runner:
        return runner.run(main())


@dataclass(frozen=True)
class Plan:
    """One round of a row: ``warmup`` + ``batches`` batches of ``batch`` operations,
    stopping early (but after at least 3 timed batches) once ``budget`` seconds pass."""

    batch: int
    batches: int
    warmup: int = 1
    budget: float = 1.0


class Clock:
    """Collects per-operation times, batch by batch, within a plan's count and budget."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.samples: list[float] = []
        self._stop = time.perf_counter() + plan.budget

    def batches(self) -> Iterator[bool]:
        """Yield ``timed`` for each batch: False for the warm-up ones, then True."""
        for _ in range(self.plan.warmup):
            yield False
        for i in range(self.plan.batches):
            if i >= 3 and time.perf_counter() > self._stop:
                return
            yield True

    def record(self, timed: bool, elapsed_ns: int, ops: int) -> None:
        """Record a batch's per-operation time in microseconds (if ``timed``)."""
        if timed:
            self.samples.append(elapsed_ns / ops / 1000.0)


@contextmanager
def no_gc() -> Iterator[None]:
    """Collect, then keep the cyclic GC off for a timed region (as ``timeit`` does)."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def tcp_pair(bufsize: int | None = None) -> tuple[socket.socket, socket.socket]:
    """A connected loopback TCP pair of blocking stdlib sockets (client, server side).

    ``bufsize``: SO_SNDBUF and SO_RCVBUF for both ends, set before the handshake.
    """
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if bufsize is not None:
                for sock in (listener, client):  # an accepted socket inherits them
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, bufsize)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufsize)
            client.connect(listener.getsockname())
            server, _ = listener.accept()
        except BaseException:
            client.close()
            raise
    return client, server


# -- results and tables --------------------------------------------------------


@dataclass
class Result:
    """One row: samples in the table's unit; ``note`` says why a row has none."""

    name: str
    samples: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def best(self, higher_is_better: bool) -> float:
        return max(self.samples) if higher_is_better else min(self.samples)


def run_rows(
    rows: list[tuple[str, Callable[[P], list[float]]]],
    plan: P,
    select: Callable[[str], bool],
    rounds: int,
) -> list[Result]:
    """Run the selected rows ``rounds`` times, round-robin, pooling each row's samples.

    Round-robin spreads a transient disturbance (another process, a frequency
    change) over every row instead of letting it land on one. A row that fails
    gets a note saying so, and the other rows still run.
    """
    results = [Result(name) for name, _ in rows if select(name)]
    fns = dict(rows)
    for _ in range(rounds):
        for result in results:
            if result.note:
                continue
            try:
                result.samples += fns[result.name](plan)
            except Exception as exc:
                result.note = f"failed: {type(exc).__name__}: {exc}"
                result.samples.clear()
    return results


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def print_table(
    title: str,
    unit: str,
    results: list[Result],
    baseline: str,
    higher_is_better: bool = False,
) -> None:
    """Print a table: median, best, spread and ratio to ``baseline`` for each row.

    The ratio is median / baseline median: below 1 is faster for a latency,
    above 1 is faster for a throughput (``higher_is_better``).
    """
    base = next((r for r in results if r.name == baseline and r.samples), None)
    width = max(len(r.name) for r in results) + 2
    print()
    print(title)
    print(f"  baseline: {baseline}")
    head = f"  {'':<{width}}{unit + ' median':>16}{'best':>10}{'spread':>9}{'x base':>9}{'n':>6}"
    print(head)
    print("  " + "-" * (len(head) - 2))
    for r in results:
        if not r.samples:
            print(f"  {r.name:<{width}}{'-':>16}   ({r.note or 'not run'})")
            continue
        med = r.median
        best = r.best(higher_is_better)
        spread = (max(r.samples) - min(r.samples)) / med * 100 if med else 0.0
        ratio = f"{med / base.median:.2f}" if base is not None and base.median else "-"
        note = f"  ({r.note})" if r.note else ""
        print(
            f"  {r.name:<{width}}{_fmt(med):>16}{_fmt(best):>10}{spread:>8.0f}%"
            f"{ratio:>9}{len(r.samples):>6}{note}"
        )


def print_versus(
    results: list[Result],
    pairs: list[tuple[str, str]],
    higher_is_better: bool = False,
) -> None:
    """Print "A vs B" lines: how many times faster A is than B (medians)."""
    by_name = {r.name: r for r in results if r.samples}
    lines = []
    for a, b in pairs:
        if a in by_name and b in by_name:
            ra, rb = by_name[a].median, by_name[b].median
            faster = ra / rb if higher_is_better else rb / ra
            verdict = f"{faster:.2f}x faster" if faster >= 1 else f"{1 / faster:.2f}x slower"
            lines.append(f"    {a} vs {b}: {verdict}")
    if lines:
        print("  asocket against its peers (medians):")
        print("\n".join(lines))
