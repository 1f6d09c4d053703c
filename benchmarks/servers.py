"""asocket server benchmarks: echo servers under a load generator in another process.

    pip install '.[bench]'
    python benchmarks/servers.py --quick     # about 45 seconds
    python benchmarks/servers.py             # about 5 minutes
    python benchmarks/servers.py --json results.json --chart ratios.png

Each implementation's echo server (asocket on asyncio, on uvloop and its sync
face; asyncio and uvloop streams and Protocols; the stdlib with a thread per
connection; trio; a C server as a reference) runs in its own process,
driven by a load generator in another process: C, compiled now with the
system's ``cc`` (a Python fallback, with a note, without one). Where there
are two CPUs or more, the server and the load generator are pinned to
different ones (to the same one for the 1-connection ping-pong: see
``--pin``). Workloads: 100 connections echoing 1 KiB requests, one
connection ping-ponging 64 B, and one connection receiving 64 KiB
``sendall``s. Rows run interleaved (A, B, C, A, B, C, ...); each figure is
the median over rounds with its min and max, and each asocket/peer ratio is
computed per round, then its median taken. See docs/performance.md.

Only 127.0.0.1 is used; every wait is bounded; every process started is
ended by its PID.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NATIVE_SRC = HERE / "_native.c"
SERVERS = HERE / "_echo_servers.py"
LOADGEN_PY = HERE / "_loadgen.py"


@dataclass(frozen=True)
class Pair:
    """asocket's row against the peer a user would otherwise pick, with the issue's target
    (None: no target, as for asocket against another checkout of itself)."""

    label: str
    asocket: str
    peer: str
    target: float | None


@dataclass(frozen=True)
class Workload:
    """One load shape, the servers it runs, and the ratios it reports."""

    key: str
    title: str
    conns: int
    size: int  # request size (echo); block size the server sends (stream)
    impls: tuple[str, ...]
    pairs: tuple[Pair, ...]
    stream: bool = False  # the server sends blocks, the client only receives

    @property
    def unit(self) -> str:
        """The figure's unit: bytes/s for the stream workload, requests/s otherwise."""
        return "B/s" if self.stream else "req/s"


ECHO_IMPLS = (
    "asocket-asyncio",
    "asyncio-streams",
    "asyncio-protocol",
    "asocket-uvloop",
    "uvloop-streams",
    "uvloop-protocol",
    "asocket-sync",
    "asocket-sync-serve_tcp",
    "stdlib-threads",
    "trio-serve_tcp",
    "trio-socket",
    "c",
)

IMPL_NAMES = frozenset(ECHO_IMPLS)


def workloads(echo_conns: int) -> list[Workload]:
    """The three workloads of issue 11's table, in its order."""
    return [
        Workload(
            "echo",
            f"{echo_conns} connections, 1 KiB echo",
            echo_conns,
            1024,
            ECHO_IMPLS,
            (
                Pair(
                    "echo: asocket on uvloop / uvloop streams",
                    "asocket-uvloop",
                    "uvloop-streams",
                    1.0,
                ),
                Pair(
                    "echo: asocket on asyncio / asyncio streams",
                    "asocket-asyncio",
                    "asyncio-streams",
                    1.0,
                ),
                Pair("echo: sync face / stdlib threads", "asocket-sync", "stdlib-threads", 0.95),
            ),
        ),
        Workload(
            "pingpong",
            "1 connection, 64 B ping-pong",
            1,
            64,
            (
                "asocket-sync",
                "stdlib-threads",
                "asocket-uvloop",
                "c",
                "asocket-asyncio",
                "uvloop-streams",
            ),
            (
                Pair("ping-pong: sync face / stdlib", "asocket-sync", "stdlib-threads", 0.95),
                Pair("ping-pong: asocket on uvloop / C server", "asocket-uvloop", "c", 0.9),
            ),
        ),
        Workload(
            "bulk",
            "1 connection, server sendall()s 64 KiB blocks",
            1,
            65536,
            ("asocket-sync", "stdlib-threads"),
            (Pair("bulk: sync face / stdlib", "asocket-sync", "stdlib-threads", 0.95),),
            stream=True,
        ),
    ]


SHORT = {"echo": "echo", "pingpong": "ping-pong", "bulk": "bulk"}
OTHER = ":other"  # suffix of the rows running the --compare checkout's asocket


def base_impl(impl: str) -> str:
    """The server's name in _echo_servers.py (without the --compare suffix)."""
    return impl.removesuffix(OTHER)


def with_compare(works: list[Workload]) -> list[Workload]:
    """Add, right after each asocket row, the same server on the --compare checkout,
    and a pair (this asocket / the other) per asocket row."""
    out = []
    for work in works:
        impls: list[str] = []
        pairs = list(work.pairs)
        for impl in work.impls:
            impls.append(impl)
            if impl.startswith("asocket-"):
                impls.append(impl + OTHER)
                pairs.append(
                    Pair(f"{SHORT[work.key]}: {NAMES[impl]} / --compare", impl, impl + OTHER, None)
                )
        out.append(replace(work, impls=tuple(impls), pairs=tuple(pairs)))
    return out


def name(impl: str) -> str:
    """A row's name in the Markdown tables."""
    return NAMES[base_impl(impl)] + (" (--compare)" if impl.endswith(OTHER) else "")


@dataclass(frozen=True)
class Plan:
    """How long each measurement runs and how many interleaved rounds."""

    rounds: int
    warmup: float
    duration: float


FULL = Plan(rounds=5, warmup=0.5, duration=2.0)
QUICK = Plan(rounds=3, warmup=0.2, duration=0.5)


# --- processes ---------------------------------------------------------------------------


def _pinner(cpu: int | None) -> Any:
    """A ``preexec_fn`` pinning the child (and every thread it starts) to ``cpu``."""
    if cpu is None:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, {cpu})

    return pin


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` (all its threads, dead ones included)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _end(proc: subprocess.Popen[bytes]) -> None:
    """End a child we started, by its PID: SIGTERM, then SIGKILL after 3 s."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(3)
        except ProcessLookupError:
            pass
    if proc.stdout is not None:
        proc.stdout.close()


@dataclass
class Server:
    """A running echo server process and where it listens."""

    impl: str
    proc: subprocess.Popen[bytes]
    log: Path
    asocket_root: str = ""  # where the server must import asocket from ("": anywhere)
    port: int = 0

    def tail(self) -> str:
        """The last lines the server wrote on stderr (for error messages)."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-5:])
        except OSError:
            return ""


def _read_port(server: Server, deadline: float) -> None:
    """Read the ``port N`` line the server prints once it listens; bounded by ``deadline``."""
    assert server.proc.stdout is not None
    fd = server.proc.stdout.fileno()
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or (server.proc.poll() is not None and not sel.select(0)):
                raise RuntimeError(f"{server.impl}: no port announced\n{server.tail()}")
            if sel.select(min(left, 0.2)):
                chunk = os.read(fd, 256)
                if not chunk:
                    raise RuntimeError(f"{server.impl}: exited\n{server.tail()}")
                buf += chunk
    line = buf.split(b"\n", 1)[0].decode()
    if not line.startswith("port "):
        raise RuntimeError(f"{server.impl}: unexpected output {line!r}")
    words = line.split(maxsplit=2)
    server.port = int(words[1])
    if server.asocket_root and base_impl(server.impl).startswith("asocket-"):
        where = words[2] if len(words) > 2 else "nowhere"
        if os.path.realpath(where) != os.path.realpath(server.asocket_root):
            raise RuntimeError(
                f"{server.impl}: imported asocket from {where}, not {server.asocket_root}"
            )


class Harness:
    """Starts servers and load generators; owns the temporary directory and every child."""

    def __init__(self, loadgen: str, pin: str, asocket_root: str) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="asocket-bench-"))
        self.native: Path | None = None
        self.notes: list[str] = []
        self.children: list[subprocess.Popen[bytes]] = []
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        self.pin = pin
        self.cpus = cpus
        if pin in ("auto", "split") and len(cpus) < 2:
            self.notes.append("one CPU only: server and load generator share it")
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (asocket_root, os.environ.get("PYTHONPATH", "")) if p
        )
        self.root = asocket_root
        self.other_env: dict[str, str] | None = None
        self.other_root = ""
        self.compile_note = ""
        if loadgen in ("auto", "c"):
            self._compile()
            if self.native is None and loadgen == "c":
                raise SystemExit(f"--loadgen c: {self.compile_note}")
        if self.native is None:
            why = self.compile_note or "--loadgen python"
            self.notes.append(
                f"NOTE: Python load generator ({why}): it is slower than most servers here, "
                "so the figures measure it as much as the servers"
            )

    def _compile(self) -> None:
        cc = shutil.which(os.environ.get("CC", "cc"))
        if cc is None:
            self.compile_note = "no C compiler (cc) found"
            return
        out = self.tmp / "native"
        started = time.monotonic()
        try:
            subprocess.run(
                [cc, "-O2", "-o", str(out), str(NATIVE_SRC)],
                check=True,
                capture_output=True,
                timeout=120,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            err = getattr(exc, "stderr", b"") or b""
            self.compile_note = f"{cc} failed: {err.decode(errors='replace')[-300:] or exc}"
            return
        self.native = out
        self.compile_note = f"C, built with {cc} -O2 in {time.monotonic() - started:.1f} s"

    def placement(self, work: Workload) -> tuple[int | None, int | None]:
        """The CPUs of the server and of the load generator for ``work`` (None: not pinned).

        ``split``: two CPUs, so that the load generator never takes the
        server's CPU. ``same``: one CPU for both. ``auto``: split, except for a
        1-connection echo: there client and server only take turns, so one
        CPU costs no throughput, while on two CPUs each message pays a
        cross-CPU wake-up (on a VM, a wake-up of an idle virtual CPU: it
        dominated the figures, 4-5x slower and twice as noisy).
        """
        if not self.cpus or self.pin == "none":
            return None, None
        split = self.pin == "split" or (self.pin == "auto" and (work.conns > 1 or work.stream))
        if split and len(self.cpus) >= 2:
            return self.cpus[0], self.cpus[1]
        return self.cpus[0], self.cpus[0]

    @property
    def loadgen_name(self) -> str:
        """``c`` or ``python``."""
        return "c" if self.native is not None else "python"

    def compare_with(self, checkout: str) -> None:
        """Run the ``:other`` rows with the asocket of ``checkout`` (holding asocket/)."""
        self.other_root = checkout
        self.other_env = dict(self.env)
        self.other_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (checkout, os.environ.get("PYTHONPATH", "")) if p
        )

    def start(self, impl: str, work: Workload, max_seconds: float) -> Server:
        """Start one echo server process (pinned to the server CPU); it announces its port."""
        stream, block = work.stream, work.size
        env, root = self.env, self.root
        if impl.endswith(OTHER):
            assert self.other_env is not None and self.other_root
            env, root = self.other_env, self.other_root
        if impl == "c":
            assert self.native is not None
            cmd = [str(self.native), "server", str(int(max_seconds))]
        else:
            cmd = [sys.executable, str(SERVERS), base_impl(impl), "--max-seconds", str(max_seconds)]
            if stream:
                cmd += ["--mode", "stream", "--block", str(block)]
        log = self.tmp / f"{impl}.log"
        with open(log, "wb") as err:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
                preexec_fn=_pinner(self.placement(work)[0]),
            )
        self.children.append(proc)
        return Server(impl, proc, log, root)

    def drive(self, server: Server, work: Workload, plan: Plan) -> dict[str, Any]:
        """Run the load generator once against ``server``: its counts, and the server's CPU."""
        args = [
            "client",
            str(server.port),
            str(work.conns),
            str(work.size),
            str(plan.warmup),
            str(plan.duration),
            "sink" if work.stream else "echo",
        ]
        if self.native is not None:
            cmd = [str(self.native), *args]
        else:
            cmd = [sys.executable, str(LOADGEN_PY), *args]
        cpu0 = _cpu_seconds(server.proc.pid)
        done = subprocess.run(
            cmd,
            capture_output=True,
            timeout=plan.warmup + plan.duration + 30,
            preexec_fn=_pinner(self.placement(work)[1]),
            env=self.env,
            check=False,
        )
        cpu1 = _cpu_seconds(server.proc.pid)
        if done.returncode != 0:
            raise RuntimeError(
                f"load generator failed ({done.returncode}): {done.stderr.decode()[-300:]}"
            )
        out: dict[str, Any] = json.loads(done.stdout)
        out["server_cpu"] = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
        return out

    def close(self) -> None:
        """End every child still running (by PID) and remove the temporary directory."""
        for proc in self.children:
            _end(proc)
        shutil.rmtree(self.tmp, ignore_errors=True)


# --- measuring -----------------------------------------------------------------------------


@dataclass
class Row:
    """One implementation in one workload: a sample per round."""

    impl: str
    stream: bool = False  # bytes, not requests
    samples: list[float] = field(default_factory=list)  # req/s or bytes/s, one per round
    runs: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    def costs(self) -> list[float | None]:
        """Per round: the server's CPU µs per request (per MB received, for a stream).

        The server's CPU time over the whole run (warm-up included) divided
        by everything it answered in it; None where it could not be measured.
        """
        out: list[float | None] = []
        for r in self.runs:
            units = r["total_bytes"] / 1e6 if self.stream else r["total_requests"]
            cpu = r.get("server_cpu")
            # 0: under the clock tick (10 ms, usually) of a very short run: unknown
            out.append(cpu * 1e6 / units if cpu and units else None)
        return out

    def summary(self) -> dict[str, Any]:
        """Median, min and max over rounds, with CPU figures (medians)."""
        out: dict[str, Any] = {"impl": self.impl, "samples": self.samples, "error": self.error}
        if self.samples:
            out.update(
                median=statistics.median(self.samples),
                min=min(self.samples),
                max=max(self.samples),
            )
        costs = [c for c in self.costs() if c is not None]
        out["server_cpu_us"] = statistics.median(costs) if costs else None
        out["server_cpu_us_per"] = "MB" if self.stream else "request"
        shares = [
            r["server_cpu"] / r["elapsed"]
            for r in self.runs
            if r.get("server_cpu") is not None and r["elapsed"]
        ]
        out["server_cpu_share"] = statistics.median(shares) if shares else None
        lg = [r["cpu_window"] / r["seconds"] for r in self.runs if r["seconds"]]
        out["loadgen_cpu_share"] = statistics.median(lg) if lg else None
        out["runs"] = self.runs
        return out


def _fmt(value: float, stream: bool) -> str:
    if stream:
        return f"{value / 1e9:.2f} GB/s"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    return f"{value / 1e3:.1f}k"


class Progress:
    """One status line on stderr, rewritten in place on a terminal."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()

    def show(self, text: str) -> None:
        """Print ``[done/total] text``."""
        elapsed = time.monotonic() - self.started
        eta = f", ~{elapsed / self.done * (self.total - self.done):.0f} s left" if self.done else ""
        line = f"[{self.done:3d}/{self.total} runs, {elapsed:.0f} s{eta}] {text}"
        if self.tty:
            sys.stderr.write("\r\033[K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def end(self) -> None:
        """Leave the status line."""
        if self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def available(impl: str, harness: Harness) -> str:
    """Why ``impl`` cannot run here ("" if it can)."""
    impl = base_impl(impl)
    if impl == "c":
        return "" if harness.native is not None else "no C compiler"
    for module in ("uvloop", "trio"):
        if module in impl and importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install '.[bench]')"
    return ""


def run_workload(
    work: Workload, impls: list[str], plan: Plan, harness: Harness, progress: Progress
) -> dict[str, Row]:
    """Start the workload's servers, run the interleaved rounds, end the servers."""
    rows = {impl: Row(impl, work.stream) for impl in impls}
    bound = 60 + len(impls) * plan.rounds * (plan.warmup + plan.duration + 5)
    servers: dict[str, Server] = {}
    try:
        for impl in impls:
            servers[impl] = harness.start(impl, work, bound)
        deadline = time.monotonic() + 30
        for impl, server in servers.items():
            try:
                _read_port(server, deadline)
            except RuntimeError as exc:
                rows[impl].error = str(exc)
        for rnd in range(plan.rounds):
            for impl in impls:
                row = rows[impl]
                if row.error:
                    progress.done += 1
                    continue
                progress.show(f"{work.key} round {rnd + 1}/{plan.rounds}: {impl} ...")
                server = servers[impl]
                try:
                    if server.proc.poll() is not None:
                        raise RuntimeError(f"server exited\n{server.tail()}")
                    out = harness.drive(server, work, plan)
                except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                    row.error = str(exc)
                    progress.done += 1
                    continue
                if out["errors"] and not out["total_bytes"]:
                    row.error = (
                        f"the server closed all {out['errors']} connection(s)\n{server.tail()}"
                    )
                    progress.done += 1
                    continue
                value = (out["bytes"] if work.stream else out["requests"]) / max(
                    out["seconds"], 1e-9
                )
                row.samples.append(value)
                row.runs.append(out)
                progress.done += 1
                progress.show(
                    f"{work.key} round {rnd + 1}/{plan.rounds}: {impl} {_fmt(value, work.stream)}"
                )
    finally:
        for server in servers.values():
            _end(server.proc)
    return rows


def ratios(work: Workload, rows: dict[str, Row]) -> list[dict[str, Any]]:
    """Per pair: the asocket/peer ratio of each round, then their median, min and max.

    A row that failed has samples for the rounds before its failure only:
    the ratios then cover the rounds both rows ran.
    """
    out = []
    for pair in work.pairs:
        a, p = rows.get(pair.asocket), rows.get(pair.peer)
        if a is None or p is None or not a.samples or not p.samples:
            continue
        per_round = [x / y for x, y in zip(a.samples, p.samples, strict=False) if y]
        if not per_round:
            continue
        med = statistics.median(per_round)
        cpu = [y / x for x, y in zip(a.costs(), p.costs(), strict=False) if x and y]
        out.append(
            {
                "cpu_ratios": cpu,
                "cpu_median": statistics.median(cpu) if cpu else None,
                "cpu_min": min(cpu) if cpu else None,
                "cpu_max": max(cpu) if cpu else None,
                "label": pair.label,
                "workload": work.key,
                "asocket": pair.asocket,
                "peer": pair.peer,
                "asocket_median": statistics.median(a.samples),
                "peer_median": statistics.median(p.samples),
                "ratios": per_round,
                "median": med,
                "min": min(per_round),
                "max": max(per_round),
                "target": pair.target,
                "met": None if pair.target is None else med >= pair.target,
            }
        )
    return out


# --- output --------------------------------------------------------------------------------


def print_workload(work: Workload, rows: dict[str, Row]) -> None:
    """The workload's table: one line per implementation."""
    unit = "GB/s" if work.stream else "req/s"
    print(f"\n{work.title} ({unit}; median [min - max] over rounds)")
    print(
        f"  {'server':<28} {'median':>10} {'min':>10} {'max':>10} "
        f"{'srv us/MB' if work.stream else 'srv us/req':>10} {'srv CPU':>8} {'load CPU':>8}"
    )
    for impl, row in rows.items():
        s = row.summary()
        if row.error and not row.samples:
            print(f"  {impl:<28} failed: {row.error.splitlines()[0]}")
            continue
        us = s["server_cpu_us"]
        us_txt = "-" if us is None else f"{us:.1f}"
        srv = "-" if s["server_cpu_share"] is None else f"{s['server_cpu_share']:.0%}"
        lg = s["loadgen_cpu_share"]
        lg_txt = "-" if lg is None else f"{lg:.0%}" + ("*" if lg > 0.9 else "")
        lost = sum(r["errors"] for r in row.runs)
        print(
            f"  {impl:<28} {_fmt(s['median'], work.stream):>10} {_fmt(s['min'], work.stream):>10} "
            f"{_fmt(s['max'], work.stream):>10} {us_txt:>10} {srv:>8} {lg_txt:>8}"
            + (f"  ({lost} connection(s) ended early)" if lost else "")
            + (f"  (then failed: {row.error.splitlines()[0]})" if row.error else "")
        )


def print_ratios(all_ratios: list[dict[str, Any]]) -> None:
    """The ratio table: per pair, median of per-round ratios, min, max, and the target."""
    print(
        "\nasocket / peer, per round, then the median, min and max (above 1: asocket is better)"
        "\n  speed: asocket's req/s (GB/s) / the peer's;"
        " CPU cost: the peer's server CPU per request (per MB) / asocket's"
    )
    if not all_ratios:
        print("  none: each ratio needs both of its servers")
        return
    print(f"  {'pair':<50} {'speed':>19} {'CPU cost':>19} {'target':>8}")
    for r in all_ratios:
        met = {True: "met", False: "not met", None: ""}[r["met"]]
        cpu = (
            "-"
            if r["cpu_median"] is None
            else f"{r['cpu_median']:.2f}x ({r['cpu_min']:.2f}-{r['cpu_max']:.2f})"
        )
        speed = f"{r['median']:.2f}x ({r['min']:.2f}-{r['max']:.2f})"
        print(
            f"  {r['label']:<50} {speed:>19} {cpu:>19} "
            f"{'-' if r['target'] is None else '>= ' + format(r['target'], '.2f'):>8} {met}"
        )


NAMES = {
    "asocket-asyncio": "asocket on asyncio",
    "asocket-uvloop": "asocket on uvloop",
    "asocket-sync": "asocket sync face (threads)",
    "asocket-sync-serve_tcp": "asocket.sync.serve_tcp",
    "asyncio-streams": "asyncio streams",
    "asyncio-protocol": "asyncio Protocol",
    "uvloop-streams": "uvloop streams",
    "uvloop-protocol": "uvloop Protocol",
    "stdlib-threads": "stdlib threads",
    "trio-serve_tcp": "trio serve_tcp",
    "trio-socket": "trio.socket",
    "c": "C server (epoll)",
}


def markdown(
    tables: list[tuple[Workload, dict[str, Row]]], all_ratios: list[dict[str, Any]]
) -> str:
    """The ratio table (issue 11's layout) and one table per workload, as Markdown."""
    stream_of = {work.key: work.stream for work, _ in tables}
    title_of = {work.key: work.title for work, _ in tables}
    lines = [
        "| workload | asocket | peer | speed ratio | CPU-cost ratio | target (speed) |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for r in all_ratios:
        st = stream_of[r["workload"]]
        lines.append(
            f"| {title_of[r['workload']]} | {name(r['asocket'])} {_fmt(r['asocket_median'], st)} "
            f"| {name(r['peer'])} {_fmt(r['peer_median'], st)} "
            f"| **{r['median']:.2f}x** ({r['min']:.2f}-{r['max']:.2f}) "
            + (
                "| - "
                if r["cpu_median"] is None
                else f"| {r['cpu_median']:.2f}x ({r['cpu_min']:.2f}-{r['cpu_max']:.2f}) "
            )
            + (
                "| - |"
                if r["target"] is None
                else f"| {r['target']:.2f}x {'met' if r['met'] else 'not met'} |"
            )
        )
    for work, rows in tables:
        unit = "GB/s" if work.stream else "req/s"
        lines += [
            "",
            f"**{work.title}** ({unit})",
            "",
            f"| server | median | min | max | server CPU µs/{'MB' if work.stream else 'req'} "
            "| server CPU | load gen. CPU |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for impl, row in rows.items():
            sm = row.summary()
            if not row.samples:
                lines.append(f"| {name(impl)} | failed | | | | | |")
                continue
            us = sm["server_cpu_us"]
            srv, lg = sm["server_cpu_share"], sm["loadgen_cpu_share"]
            lines.append(
                f"| {name(impl)} | {_fmt(sm['median'], work.stream)} "
                f"| {_fmt(sm['min'], work.stream)} | {_fmt(sm['max'], work.stream)} "
                f"| {'-' if us is None else format(us, '.1f')} "
                f"| {'-' if srv is None else format(srv, '.0%')} "
                f"| {'-' if lg is None else format(lg, '.0%')} |"
            )
    return "\n".join(lines) + "\n"


def write_chart(path: str, all_ratios: list[dict[str, Any]], title: str) -> str:
    """Per pair, two bars: the speed ratio and the CPU-cost ratio (medians, min-max
    whiskers), the target marked; written as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "chart skipped: matplotlib is not installed (pip install '.[bench]')"
    if not all_ratios:
        return "chart skipped: no ratio was measured"
    rows = all_ratios[::-1]  # first pair on top
    fig, ax = plt.subplots(figsize=(8, 0.62 * len(rows) + 1.6), dpi=100)
    top = 1.3
    for y, r in enumerate(rows):
        bars = [("", r["median"], r["min"], r["max"], 0.17)]
        if r["cpu_median"] is not None:
            bars.append(("cpu_", r["cpu_median"], r["cpu_min"], r["cpu_max"], -0.17))
        for kind, med, lo, hi, dy in bars:
            if kind:
                color = "#8d99ae"
            elif r["target"] is None:
                color = "#457b9d"
            else:
                color = "#2a9d8f" if med >= r["target"] else "#e76f51"
            ax.barh(y + dy, med, xerr=[[med - lo], [hi - med]], color=color, capsize=2, height=0.32)
            ax.text(hi + 0.02, y + dy, f"{med:.2f}x", va="center", fontsize=7)
            top = max(top, hi + 0.2)
        if r["target"] is not None:
            ax.plot([r["target"]] * 2, [y - 0.4, y + 0.4], color="black", linewidth=2)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r["label"] for r in rows], fontsize=8)
    ax.set_xlim(0, top)
    ax.set_xlabel(
        "asocket / peer: median of the per-round ratios, whiskers min-max "
        "(above 1: asocket is better)",
        fontsize=8,
    )
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    ax.legend(
        handles=[
            Patch(color="#2a9d8f", label="speed, target met"),
            Patch(color="#e76f51", label="speed, target not met"),
            Patch(color="#8d99ae", label="CPU cost per request (peer / asocket)"),
            Line2D([], [], color="black", linewidth=2, label="target (speed)"),
        ],
        fontsize=7,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.08 - 0.3 / len(rows)),
        ncol=2,
    )
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return f"chart written to {path}"


def report(
    tables: list[tuple[Workload, dict[str, Row]]],
    all_ratios: list[dict[str, Any]],
    chart: str | None,
    md: str | None,
    title: str,
) -> None:
    """Print the tables and the ratios; write the chart and the Markdown if asked."""
    for work, rows in tables:
        print_workload(work, rows)
    if any(
        (r.summary()["loadgen_cpu_share"] or 0) > 0.9 for _, rows in tables for r in rows.values()
    ):
        print("* load generator busy over 90% of its CPU: that figure may be its limit")
    print_ratios(all_ratios)
    print()
    if chart:
        print(write_chart(chart, all_ratios, title))
    if md:
        with open(md, "w") as f:
            f.write(markdown(tables, all_ratios))
        print(f"Markdown tables written to {md}")


def from_json(path: str, chart: str | None, md: str | None) -> None:
    """Report a run saved with ``--json`` again: tables, ratios, chart, Markdown."""
    with open(path) as f:
        doc = json.load(f)
    conns = doc["workloads"].get("echo", {}).get("connections", 100)
    works = workloads(conns)
    by_key = {w.key: w for w in (with_compare(works) if doc.get("compare") else works)}
    tables: list[tuple[Workload, dict[str, Row]]] = []
    all_ratios: list[dict[str, Any]] = []
    for key, saved in doc["workloads"].items():
        work = by_key[key]
        rows = {
            impl: Row(impl, work.stream, list(r["samples"]), list(r["runs"]), r["error"])
            for impl, r in saved["rows"].items()
        }
        tables.append((work, rows))
        all_ratios += ratios(work, rows)
    print(f"run of {doc['date']}: {doc['command']}")
    quick = " (--quick)" if "--quick" in doc["command"].split() else ""
    title = f"asocket server benchmarks, {doc['date']}, {doc['machine']['cpus']} CPUs{quick}"
    report(tables, all_ratios, chart, md, title)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "system": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("asocket", "uvloop", "trio", "matplotlib"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the workloads, print the tables, write JSON and chart."""
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="3 short rounds (about 45 s)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5; --quick 3)")
    parser.add_argument("--duration", type=float, help="seconds counted per run (2.0; --quick 0.5)")
    parser.add_argument(
        "--warmup", type=float, help="seconds not counted before (0.5; --quick 0.2)"
    )
    parser.add_argument(
        "--workloads", default="echo,pingpong,bulk", help="subset of echo,pingpong,bulk"
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated server names, or parts of names: run only those servers",
    )
    parser.add_argument("--echo-conns", type=int, default=100, help="connections in echo (100)")
    parser.add_argument(
        "--loadgen", choices=("auto", "c", "python"), default="auto", help="auto: C if cc works"
    )
    parser.add_argument(
        "--pin",
        choices=("auto", "split", "same", "none"),
        default="auto",
        help="split: server on one CPU, load generator on another; same: both on one; "
        "none: the scheduler places them; auto (default): same for the 1-connection "
        "ping-pong, split otherwise",
    )
    parser.add_argument("--json", metavar="PATH", help="write every figure as JSON")
    parser.add_argument("--chart", metavar="PATH", help="write a PNG chart of the ratios")
    parser.add_argument("--markdown", metavar="PATH", help="write the tables as Markdown")
    parser.add_argument(
        "--compare",
        metavar="CHECKOUT",
        help="also run each asocket server with the asocket of CHECKOUT (a directory "
        "holding asocket/), next to this one, with a ratio per round",
    )
    parser.add_argument(
        "--from-json",
        metavar="PATH",
        help="run nothing: report the run saved in PATH (with --json) again, "
        "with --chart and --markdown if given",
    )
    args = parser.parse_args(argv)
    if args.from_json:
        from_json(args.from_json, args.chart, args.markdown)
        return 0

    base = QUICK if args.quick else FULL
    plan = Plan(
        rounds=max(1, args.rounds or base.rounds),
        warmup=max(0.0, base.warmup if args.warmup is None else args.warmup),
        duration=max(0.05, args.duration or base.duration),
    )
    keys = [k.strip() for k in args.workloads.split(",") if k.strip()]
    works = [w for w in workloads(args.echo_conns) if w.key in keys]
    compare = None
    if args.compare:
        compare = str(Path(args.compare).resolve())
        if not (Path(compare) / "asocket" / "__init__.py").exists():
            parser.error(f"--compare: no asocket/__init__.py in {compare}")
        works = with_compare(works)
    unknown = set(keys) - {w.key for w in workloads(1)}
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    only = [t.strip() for t in args.only.split(",") if t.strip()]

    import asocket

    root = str(Path(asocket.__file__).resolve().parent.parent)
    harness = Harness(args.loadgen, args.pin, root)
    if compare:
        harness.compare_with(compare)
    try:
        info = machine()
        versions = _versions()
        quick = " (--quick)" if args.quick else ""
        print(f"asocket {asocket.__version__} from {root}; server benchmarks{quick}")
        if compare:
            print(f"--compare: the rows marked {OTHER} import asocket from {compare}")
        print(
            f"Python {info['python']}, uvloop {versions['uvloop']}, trio {versions['trio']}; "
            f"{info['system']}, {info['cpus']} CPUs ({info['cpu_model']})"
        )
        if info["load_average"]:
            print("Load average before the run: {:.2f} {:.2f} {:.2f}".format(*info["load_average"]))
            if info["load_average"][0] > 0.5 * (info["cpus"] or 1):
                print(
                    "NOTE: the machine is busy: the servers may not get a whole CPU, and "
                    "req/s will vary between rounds (the CPU-cost ratios vary less)"
                )
        print(f"load generator: {harness.compile_note if harness.native else 'Python'}")
        for work in works:
            srv, lg = harness.placement(work)
            where = (
                "not pinned" if srv is None else f"server on CPU {srv}, load generator on CPU {lg}"
            )
            print(f"{work.key}: {where} (--pin {args.pin})")
        for note in harness.notes:
            print(note)
        print(
            f"{plan.rounds} interleaved rounds; each run: {plan.warmup} s warm-up, "
            f"{plan.duration} s counted"
        )

        plans: list[tuple[Workload, list[str]]] = []
        for work in works:
            impls = []
            for impl in work.impls:
                if only and not any(
                    t == base_impl(impl) or (t not in IMPL_NAMES and t in impl) for t in only
                ):
                    continue
                why = available(impl, harness)
                if why:
                    print(f"skipped {impl} in {work.key}: {why}")
                    continue
                impls.append(impl)
            if impls:
                plans.append((work, impls))
        progress = Progress(sum(len(i) for _, i in plans) * plan.rounds)
        started = time.monotonic()
        results: dict[str, Any] = {}
        all_ratios: list[dict[str, Any]] = []
        tables: list[tuple[Workload, dict[str, Row]]] = []
        try:
            for work, impls in plans:
                rows = run_workload(work, impls, plan, harness, progress)
                tables.append((work, rows))
                all_ratios += ratios(work, rows)
                results[work.key] = {
                    "title": work.title,
                    "connections": work.conns,
                    "size": work.size,
                    "unit": work.unit,
                    "rows": {impl: row.summary() for impl, row in rows.items()},
                }
        finally:
            progress.end()
        elapsed = time.monotonic() - started
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        title = f"asocket server benchmarks, {stamp}, {info['cpus']} CPUs" + (
            " (--quick)" if args.quick else ""
        )
        report(tables, all_ratios, args.chart, args.markdown, title)
        print(f"total time {elapsed:.1f} s")
        if args.json:
            doc = {
                "date": stamp,
                "command": " ".join(["python", *sys.argv]) if argv is None else " ".join(argv),
                "machine": info,
                "versions": versions,
                "asocket_from": root,
                "compare": compare,
                "loadgen": harness.loadgen_name,
                "pin": args.pin,
                "placement": {w.key: harness.placement(w) for w in works},
                "plan": {"rounds": plan.rounds, "warmup": plan.warmup, "duration": plan.duration},
                "workloads": results,
                "ratios": all_ratios,
                "seconds": elapsed,
            }
            with open(args.json, "w") as f:
                json.dump(doc, f, indent=1)
            print(f"JSON written to {args.json}")
    finally:
        harness.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
