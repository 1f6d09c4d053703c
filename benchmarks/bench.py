"""asocket benchmarks: every peer side by side, in one process run.

    pip install '.[bench]'
    python benchmarks/bench.py            # full run, under 2 minutes
    python benchmarks/bench.py --quick    # about 15 seconds

(The server benchmarks, with a load generator in another process, are in
servers.py.)

Sections (see README.md): 1. recv of buffered data, per call; 2. 1-byte
ping-pong round trip; 3. bulk throughput over loopback TCP; 4. syscalls per
ping-pong round trip under ``strace`` (skipped, with a note, without strace);
5. connection set-up (connect + close) and Happy Eyeballs time to connect.
Every loop is bounded in count and in time; only loopback TCP (127.0.0.1,
::1) and ``socketpair`` are used, and every socket is closed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass
from importlib.metadata import version

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _bulk
import _common as c
import _connect
import _pingpong
import _recv
import _strace

import asocket

SECTIONS = ("recv", "pingpong", "bulk", "strace", "connect")


@dataclass(frozen=True)
class Plans:
    """What one round of each section runs; every row runs ``rounds`` rounds."""

    rounds: int
    recv: c.Plan
    pingpong: c.Plan
    bulk: _bulk.BulkPlan
    strace: tuple[int, int, list[str]]  # n1, n2 round trips; peers
    connect: _connect.ConnectPlan


FULL = Plans(  # under a minute
    rounds=3,
    recv=c.Plan(batch=1000, batches=60, warmup=1, budget=0.2),
    pingpong=c.Plan(batch=500, batches=15, warmup=1, budget=0.5),
    bulk=_bulk.BulkPlan(total=64 << 20, reps=5, budget=0.5),
    strace=(500, 2500, _strace.PEERS),
    connect=_connect.ConnectPlan(  # about 20 seconds
        rate=c.Plan(batch=100, batches=20, warmup=1, budget=0.3),
        eyeballs=c.Plan(batch=1, batches=5, warmup=0, budget=2.5),
    ),
)
QUICK = Plans(  # about 15 seconds
    rounds=2,
    recv=c.Plan(batch=1000, batches=15, warmup=1, budget=0.06),
    pingpong=c.Plan(batch=250, batches=8, warmup=1, budget=0.15),
    bulk=_bulk.BulkPlan(total=64 << 20, reps=3, budget=0.2),
    strace=(200, 1200, _strace.REQUIRED),
    connect=_connect.ConnectPlan(  # about 5 seconds
        rate=c.Plan(batch=50, batches=5, warmup=1, budget=0.05),
        eyeballs=c.Plan(batch=1, batches=2, warmup=0, budget=0.5),
    ),
)

SMOKE = Plans(  # a few seconds: every row runs once, the figures mean nothing (tests)
    rounds=1,
    recv=c.Plan(batch=50, batches=3, warmup=0, budget=0.01),
    pingpong=c.Plan(batch=10, batches=3, warmup=0, budget=0.01),
    bulk=_bulk.BulkPlan(total=1 << 20, reps=1, budget=0.01),
    strace=(20, 40, _strace.REQUIRED),
    connect=_connect.ConnectPlan(
        rate=c.Plan(batch=3, batches=3, warmup=0, budget=0.01),
        eyeballs=c.Plan(batch=1, batches=1, warmup=0, budget=0.01),
    ),
)


def _header(args: argparse.Namespace) -> None:
    libs = ", ".join(f"{m} {version(m)}" for m in ("uvloop", "anyio", "trio"))
    where = os.path.dirname(os.path.dirname(os.path.abspath(asocket.__file__)))
    print(
        f"asocket {asocket.__version__} (from {where}) benchmarks"
        f"{' (--quick)' if args.quick else ''}"
    )
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), {libs}; "
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs"
    )
    if hasattr(os, "getloadavg"):
        print("Load average before the run: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print("Latencies: median and best batch, spread = (max-min)/median over the n batches;")
    print("x base = median / baseline median (below 1: faster for latencies, slower for MB/s).")


def _pin(pin: bool) -> set[int] | None:
    """Pin this thread (and the threads it starts) to one CPU; return the old CPU set.

    Two threads playing ping-pong on two CPUs pay a cross-CPU wake-up whose
    cost depends on where the scheduler happens to put them: the figures jump
    between runs by 3x. On one CPU they are stable, and every peer, threads or
    event loop, runs on one CPU.
    """
    if not pin or not hasattr(os, "sched_setaffinity"):
        print("Not pinned: thread peers may vary by 3x from run to run.")
        return None
    cpus = os.sched_getaffinity(0)
    cpu = min(cpus)
    os.sched_setaffinity(0, {cpu})
    print(f"Pinned to CPU {cpu} for sections 1-3 and 5 (--no-pin to let threads spread).")
    return cpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a run of about 15 seconds")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes, one round: checks that every row runs (the test suite); "
        "the figures mean nothing",
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)",
    )
    parser.add_argument(
        "--only", default="", help="run only the rows whose name contains this text"
    )
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin the process to one CPU for sections 1-3 and 5 (thread peers get noisy)",
    )
    parser.add_argument("--child", metavar="PEER", help=argparse.SUPPRESS)
    parser.add_argument("-n", "--count", type=int, default=1000, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:  # one untimed ping-pong run, for strace to count
        _pingpong.run_one(args.child, args.count)
        return 0

    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")

    def select(name: str) -> bool:
        return args.only in name

    plans = SMOKE if args.smoke else QUICK if args.quick else FULL
    started = time.perf_counter()
    _header(args)
    cpus = _pin(not args.no_pin)

    if "recv" in sections:
        plan = plans.recv
        results = _recv.run(plan, select, plans.rounds)
        c.print_table(
            f"1. recv of buffered data, per call (recv(1), {plan.batch} calls per batch; "
            f"{plans.rounds} rounds)",
            "us/call",
            results,
            _recv.BASELINE,
        )
        c.print_versus(results, _recv.VERSUS)

    if "pingpong" in sections:
        plan = plans.pingpong
        results = _pingpong.run(plan, select, plans.rounds)
        c.print_table(
            "2. 1-byte ping-pong over a socketpair, per round trip "
            f"({plan.batch} round trips per batch; {plans.rounds} rounds)",
            "us/rt",
            results,
            _pingpong.BASELINE,
        )
        c.print_versus(results, _pingpong.VERSUS)

    if "bulk" in sections:
        bplan = plans.bulk
        results = _bulk.run(bplan, select, plans.rounds)
        c.print_table(
            f"3. bulk throughput, {bplan.total >> 20} MiB over loopback TCP "
            f"(1 MiB sendall, 256 KiB recv_into; one transfer per sample; {plans.rounds} rounds)",
            "MB/s",
            results,
            _bulk.BASELINE,
            higher_is_better=True,
        )
        c.print_versus(results, _bulk.VERSUS, higher_is_better=True)

    if cpus is not None:  # strace children may run side by side: give them every CPU
        os.sched_setaffinity(0, cpus)

    if "strace" in sections:
        n1, n2, peers = plans.strace
        reason = _strace.available()
        if reason is not None:
            print(f"\n4. syscalls per round trip: skipped ({reason})")
        else:
            _strace.print_table(_strace.run(n1, n2, select, peers), n1, n2)

    if "connect" in sections:
        if cpus is not None:
            os.sched_setaffinity(0, {min(cpus)})
        cplan = plans.connect
        rate, eyeballs = _connect.run(cplan, select, plans.rounds)
        c.print_table(
            f"5a. connection set-up to a 127.0.0.1 listener, per call: connect + close "
            f"({cplan.rate.batch} per batch; {plans.rounds} rounds)",
            "us/conn",
            rate,
            _connect.BASELINE,
        )
        c.print_versus(rate, _connect.VERSUS)
        c.print_table(
            "5b. time to connect to localhost = [::1, 127.0.0.1], ::1 black-holed "
            f"(up to {cplan.eyeballs.batches} connects per row; 1 round)",
            "ms",
            eyeballs,
            _connect.EYEBALLS_BASELINE,
        )
        c.print_versus(eyeballs, _connect.EYEBALLS_VERSUS)
        if cpus is not None:
            os.sched_setaffinity(0, cpus)

    print(f"\ntotal time {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
