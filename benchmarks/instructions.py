"""CPU instructions per request of each echo server, counted by valgrind: a figure
that does not move with the machine's noise.

    python benchmarks/instructions.py                       # about 3 minutes
    python benchmarks/instructions.py --compare ../other    # also another checkout's asocket
    python benchmarks/instructions.py --only asocket-uvloop,uvloop-streams --rounds 200
    python benchmarks/instructions.py --keep dumps/   # then: callgrind_annotate dumps/...

Wall-clock and CPU-time ratios on a shared virtual machine move by 10-30% from
one round to the next (docs/performance.md); an instruction count does not.
Each server of ``_echo_servers.py`` runs under ``valgrind --tool=callgrind``
(about 50 times slower), driven by a client in this process: ``--conns``
connections each send a request, the client waits for every echo, pauses
(``--pause``), and starts the next round. The pause makes the server wait for
its next request, as a server under real load does (its ``recv`` after an
answer finds nothing: docs/design.md, "The read hint"); without it the slowed
server would always find the next request there. The counters are zeroed after
a warm-up and dumped after the last round: the figure is the server process's
user-space instructions (all threads) divided by the requests answered.

What it does not count: the kernel's work (a syscall is a few instructions
here), so a change that adds or removes a syscall must be judged with
``strace -c`` or ``servers.py`` as well. Linux only; needs ``valgrind``.
"""

from __future__ import annotations

import argparse
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVERS = HERE / "_echo_servers.py"
ROOT = HERE.parent

# (workload, connections, request size): the 100-connection echo with fewer
# connections (valgrind runs one thread at a time), and the 1-connection ping-pong.
WORKLOADS = {"echo": (20, 1024), "pingpong": (1, 64)}
DEFAULT = {
    "echo": [
        "asocket-uvloop",
        "uvloop-streams",
        "asocket-asyncio",
        "asyncio-streams",
        "asocket-sync",
        "stdlib-threads",
    ],
    "pingpong": ["asocket-uvloop", "asocket-sync", "stdlib-threads"],
}
PAIRS = [
    ("asocket-uvloop", "uvloop-streams"),
    ("asocket-asyncio", "asyncio-streams"),
    ("asocket-sync", "stdlib-threads"),
]


def _drive(port: int, conns: int, rounds: int, size: int, pause: float) -> None:
    """``rounds`` lock-step rounds of one ``size``-byte request per connection."""
    payload = b"x" * size
    socks = []
    with selectors.DefaultSelector() as sel:
        try:
            for _ in range(conns):
                s = socket.create_connection(("127.0.0.1", port), timeout=60)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.setblocking(False)
                sel.register(s, selectors.EVENT_READ)
                socks.append(s)
            for _ in range(rounds):
                got = dict.fromkeys(socks, 0)
                for s in socks:
                    s.sendall(payload)
                waiting = conns
                deadline = time.monotonic() + 60
                while waiting:
                    if time.monotonic() > deadline:
                        raise TimeoutError("the server stopped answering")
                    for key, _ in sel.select(1):
                        sock = key.fileobj
                        assert isinstance(sock, socket.socket)
                        got[sock] += len(sock.recv(65536))
                        if got[sock] == size:
                            waiting -= 1
                time.sleep(pause)
        finally:
            for s in socks:
                s.close()


def measure(
    impl: str, work: str, rounds: int, pause: float, root: Path, keep: Path | None = None
) -> float:
    """Instructions per request of ``impl``'s server (asocket imported from ``root``);
    with ``keep``, its callgrind dump is copied there (for ``callgrind_annotate``)."""
    conns, size = WORKLOADS[work]
    with tempfile.TemporaryDirectory(prefix="asocket-ir-") as tmp:
        out = Path(tmp) / "callgrind.out"
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(
                p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p
            ),
        )
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             sys.executable, str(SERVERS), impl, "--max-seconds", "900"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            with selectors.DefaultSelector() as sel:  # valgrind starts slowly: 2 minutes at most
                sel.register(proc.stdout, selectors.EVENT_READ)
                if not sel.select(120):
                    raise RuntimeError(f"{impl}: no port announced in 120 s")
            line = proc.stdout.readline().decode().split()  # "port N [where asocket is]"
            if not line or line[0] != "port":
                raise RuntimeError(f"{impl}: no port announced")
            if impl.startswith("asocket-") and Path(line[2]).resolve() != root.resolve():
                raise RuntimeError(f"{impl}: imported asocket from {line[2]}, not {root}")
            port = int(line[1])
            _drive(port, conns, 10, size, pause)  # warm-up, not counted
            subprocess.run(
                ["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True
            )
            _drive(port, conns, rounds, size, pause)
            subprocess.run(
                ["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True
            )
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        total = 0
        for dump in Path(tmp).glob("callgrind.out.*"):  # the dump: one file per thread
            for text in dump.read_text().splitlines():
                if text.startswith(("summary:", "totals:")):
                    total += int(text.split()[1])
                    break
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(dump, keep / f"callgrind.{impl}.{work}.{dump.name.rsplit('.', 1)[1]}")
    return total / (conns * rounds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300, help="counted rounds (300)")
    parser.add_argument("--pause", type=float, default=0.004, help="seconds between rounds")
    parser.add_argument("--workloads", default="echo,pingpong", help="subset of echo,pingpong")
    parser.add_argument("--only", help="comma-separated server names")
    parser.add_argument("--compare", metavar="CHECKOUT", help="also the asocket of CHECKOUT")
    parser.add_argument(
        "--keep",
        metavar="DIR",
        type=Path,
        help="keep each server's callgrind dump in DIR (read with callgrind_annotate)",
    )
    args = parser.parse_args(argv)
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        print("instructions.py needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2
    roots = [("", ROOT)] + ([(" (--compare)", Path(args.compare))] if args.compare else [])
    print(f"CPU instructions per request, server process, {args.rounds} rounds (valgrind)")
    for work in args.workloads.split(","):
        conns, size = WORKLOADS[work]
        impls = args.only.split(",") if args.only else DEFAULT[work]
        print(f"\n{work}: {conns} connection(s), {size} B requests")
        got: dict[str, float] = {}
        for impl in impls:
            for suffix, root in roots if impl.startswith("asocket-") else roots[:1]:
                keep = args.keep / suffix.strip(" ()-") if args.keep and suffix else args.keep
                ir = measure(impl, work, args.rounds, args.pause, root, keep)
                got[impl + suffix] = ir
                print(f"  {impl + suffix:34} {ir:10,.0f}", flush=True)
        for mine, peer in PAIRS:
            if mine in got and peer in got:
                print(f"  {mine} / {peer}: {got[peer] / got[mine]:.2f}x (above 1: asocket cheaper)")
        if args.compare:
            for impl in impls:
                other = got.get(impl + " (--compare)")
                if other:
                    print(f"  {impl}: this checkout / --compare: {other / got[impl]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
