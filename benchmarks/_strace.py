"""Syscalls per ping-pong round trip, counted with ``strace -f -c``.

Each peer's ping-pong (the one of ``_pingpong``) runs in a child process under
``strace`` twice, with ``n1`` and ``n2`` round trips; the difference of the two
counts divided by ``n2 - n1`` is the steady-state count per round trip, with
interpreter start-up, imports and connection setup cancelled out. Counts do
not depend on timing for peers whose two ends share one event loop; for the
thread peers the ``futex`` count (GIL hand-offs) varies from run to run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(HERE, "bench.py")

PEERS = [
    "asyncio sock_*",
    "uvloop sock_*",
    "asyncio streams",
    "uvloop streams",
    "anyio (asyncio backend)",
    "trio",
    "asocket, asyncio",
    "asocket, uvloop",
    "asocket timeout=5, asyncio",
    "asocket timeout=5, uvloop",
    "stdlib threads",
    "asocket.sync threads",
    "stdlib timeout=5 threads",
    "asocket.sync timeout=5 threads",
]
STRACE = ["strace", "-f", "-c"]
REQUIRED = ["asyncio sock_*", "asocket, asyncio", "asocket, uvloop"]

COLUMNS = [
    ("epoll_ctl", ("epoll_ctl",)),
    ("epoll_wait", ("epoll_wait", "epoll_pwait", "epoll_pwait2")),
    ("recv", ("recvfrom", "recvmsg", "read")),
    ("poll", ("poll", "ppoll")),
    ("recv EAGAIN", ()),
    ("send", ("sendto", "sendmsg", "write")),
    ("futex", ("futex",)),
    ("total", ()),
]


def available() -> str | None:
    """``None`` if strace can run here, else the reason it cannot."""
    if shutil.which("strace") is None:
        return "strace not found (apt-get install -y strace)"
    try:
        subprocess.run(
            ["strace", "-f", "-c", "-o", os.devnull, "true"],
            check=True,
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"strace does not run here: {exc}"
    return None


def _parse(text: str) -> tuple[dict[str, int], dict[str, int]]:
    """``strace -c`` summary -> (calls per syscall, errors per syscall)."""
    calls: dict[str, int] = {}
    errors: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 5 or not parts[0][0].isdigit() or parts[-1] == "total":
            continue
        calls[parts[-1]] = int(parts[3])
        if len(parts) == 6:
            errors[parts[-1]] = int(parts[4])
    return calls, errors


def _count(peer: str, n: int) -> tuple[dict[str, int], dict[str, int]]:
    with tempfile.NamedTemporaryFile("r", prefix="asocket-strace-", suffix=".txt") as out:
        subprocess.run(
            [*STRACE, "-o", out.name, "--", sys.executable, BENCH, "--child", peer, "-n", str(n)],
            check=True,
            timeout=120,
            stdout=subprocess.DEVNULL,
        )
        return _parse(out.read())


def _per_round_trip(peer: str, n1: int, n2: int) -> dict[str, float]:
    (c1, e1), (c2, e2) = _count(peer, n1), _count(peer, n2)
    span = n2 - n1

    def diff(names: tuple[str, ...], table1: dict[str, int], table2: dict[str, int]) -> float:
        return sum(table2.get(s, 0) - table1.get(s, 0) for s in names) / span

    row = {}
    for col, names in COLUMNS:
        if col == "total":
            row[col] = diff(tuple(set(c1) | set(c2)), c1, c2)
        elif col == "recv EAGAIN":
            row[col] = diff(dict(COLUMNS)["recv"], e1, e2)
        else:
            row[col] = diff(names, c1, c2)
    return row


def run(
    n1: int, n2: int, select: Callable[[str], bool], peers: list[str], jobs: int = 2
) -> list[tuple[str, dict[str, float] | str]]:
    """Per-round-trip syscall counts for each selected peer (or the error text)."""
    chosen = [p for p in peers if select(p)]

    def one(peer: str) -> tuple[str, dict[str, float] | str]:
        try:
            return peer, _per_round_trip(peer, n1, n2)
        except (OSError, subprocess.SubprocessError) as exc:
            return peer, f"failed: {exc}"

    # Counts do not depend on timing, so children may run side by side.
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, chosen))


def print_table(rows: list[tuple[str, dict[str, float] | str]], n1: int, n2: int) -> None:
    print()
    print(f"4. syscalls per ping-pong round trip (strace -f -c; ({n2}-{n1}) round trips)")
    print("   recv/send: recvfrom/sendto (+recvmsg/sendmsg, read/write); EAGAIN: failed recvs")
    width = max(len(name) for name, _ in rows) + 2
    head = f"  {'':<{width}}" + "".join(f"{col:>12}" for col, _ in COLUMNS)
    print(head)
    print("  " + "-" * (len(head) - 2))
    for name, row in rows:
        if isinstance(row, str):
            print(f"  {name:<{width}}   ({row})")
            continue
        print(f"  {name:<{width}}" + "".join(f"{row[col]:>12.2f}" for col, _ in COLUMNS))
