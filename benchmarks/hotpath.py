"""The per-call cost of asocket's hot paths, in CPU time, for this checkout and others.

    python benchmarks/hotpath.py                     # the installed asocket
    python benchmarks/hotpath.py CHECKOUT [CHECKOUT ...]   # each checkout, interleaved

Each checkout runs in its own process (``PYTHONPATH=CHECKOUT``), rounds interleaved;
every figure is the best of several batches of ``time.process_time()`` per call,
which a busy machine disturbs far less than wall time. Rows: ``recv(1)`` of buffered
data on the sync face (timeout and blocking modes) and the async face (asyncio,
uvloop), and a 1-byte ping-pong between two tasks (per round trip). Loopback
socketpairs only; bounded in count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

N = 20000  # recv calls per batch
M = 3000  # ping-pong round trips per batch


def _best(fn: Any, reps: int) -> float:
    return min(fn() for _ in range(reps))


def _measure() -> dict[str, float]:
    import asocket
    import asocket.sync

    def sync_recv(timeout: float | None) -> float:
        a, b = asocket.sync.socketpair()
        with a, b:
            b.settimeout(timeout)
            a.sendall(b"x" * N)
            t = time.process_time()
            for _ in range(N):
                b.recv(1)
            return (time.process_time() - t) / N * 1e6

    async def async_recv() -> float:
        a, b = asocket.socketpair()
        with a, b:
            await a.sendall(b"x" * N)
            t = time.process_time()
            for _ in range(N):
                await b.recv(1)
            return (time.process_time() - t) / N * 1e6

    async def pingpong() -> float:
        a, b = asocket.socketpair()
        with a, b:

            async def echo() -> None:
                for _ in range(M):
                    await b.send(await b.recv(1))

            task = asyncio.create_task(echo())
            t = time.process_time()
            for _ in range(M):
                await a.send(b"x")
                await a.recv(1)
            result = (time.process_time() - t) / M * 1e6
            await task
            return result

    runs: dict[str, Any] = {
        "sync recv, timeout": lambda: sync_recv(5.0),
        "sync recv, blocking": lambda: sync_recv(None),
        "async recv, asyncio": lambda: asyncio.run(async_recv()),
        "async ping-pong, asyncio": lambda: asyncio.run(pingpong()),
    }
    try:
        import uvloop

        runs["async recv, uvloop"] = lambda: uvloop.run(async_recv())
        runs["async ping-pong, uvloop"] = lambda: uvloop.run(pingpong())
    except ImportError:
        pass
    return {name: _best(fn, 7 if "ping" in name else 15) for name, fn in runs.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkouts", nargs="*", help="checkouts to compare (default: installed)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_measure()))
        return 0
    targets = args.checkouts or [""]
    results: dict[str, list[dict[str, float]]] = {t: [] for t in targets}
    for round_ in range(args.rounds):
        for target in targets:
            print(f"round {round_ + 1}/{args.rounds}: {target or 'installed'}", file=sys.stderr)
            env = dict(os.environ)
            if target:
                env["PYTHONPATH"] = os.path.abspath(target)
            out = subprocess.run(
                [sys.executable, __file__, "--child"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                timeout=600,
            ).stdout
            results[target].append(json.loads(out))
    rows = list(results[targets[0]][0])
    print("CPU µs per call (round trip), median of rounds of best batches")
    print(f"{'':28}" + "".join(f"{t or 'installed':>22}" for t in targets))
    for row in rows:
        cells = [statistics.median(r[row] for r in results[t]) for t in targets]
        ratio = f"   {cells[-1] / cells[0]:.2f}x" if len(cells) > 1 else ""
        print(f"{row:28}" + "".join(f"{c:22.3f}" for c in cells) + ratio)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
