"""Smoke runs of the benchmarks with tiny sizes: they keep the harness from rotting.

Each test runs a script the way a user does (``python benchmarks/...``, in a
subprocess, bounded by a timeout) and checks that every row produced a
figure, that the JSON holds what docs/performance.md describes, and that the
chart is written or skipped with a note. No timing is asserted. The C load
generator is tested only where ``cc`` exists; the Python fallback always is.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def run_servers(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    """Run servers.py with tiny sizes plus ``args``; return its JSON and its stdout."""
    out = tmp_path / "results.json"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "servers.py"),
            "--rounds=2",
            "--warmup=0",
            "--duration=0.05",
            "--echo-conns=3",
            f"--json={out}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "round 2/2" in done.stderr  # the progress line
    return json.loads(out.read_text()), done.stdout


def check_rows(doc: dict[str, Any], expected: dict[str, set[str]]) -> None:
    """Every expected row ran both rounds, counted something and failed nowhere."""
    assert set(doc["workloads"]) == set(expected)
    for key, impls in expected.items():
        rows = doc["workloads"][key]["rows"]
        assert set(rows) == impls, key
        for impl, row in rows.items():
            assert row["error"] == "", (key, impl, row["error"])
            assert len(row["samples"]) == 2, (key, impl)
            assert all(x > 0 for x in row["samples"]), (key, impl, row["runs"])
            assert row["min"] <= row["median"] <= row["max"]


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler (cc): no C load generator")
def test_servers_c_loadgen(tmp_path: Path) -> None:
    chart = tmp_path / "ratios.png"
    doc, stdout = run_servers(
        tmp_path,
        "--workloads=echo,pingpong",  # bulk: in the Python load generator's test
        "--only=asocket-asyncio,asyncio-streams,asocket-sync,stdlib-threads,c",
        f"--chart={chart}",
    )
    assert doc["loadgen"] == "c"
    check_rows(
        doc,
        {
            "echo": {"asocket-asyncio", "asyncio-streams", "asocket-sync", "stdlib-threads", "c"},
            "pingpong": {"asocket-sync", "stdlib-threads", "c", "asocket-asyncio"},
        },
    )
    labels = {r["label"] for r in doc["ratios"]}
    assert labels == {
        "echo: asocket on asyncio / asyncio streams",
        "echo: sync face / stdlib threads",
        "ping-pong: sync face / stdlib",
    }
    for r in doc["ratios"]:
        assert len(r["ratios"]) == 2 and r["min"] <= r["median"] <= r["max"]
        assert len(r["cpu_ratios"]) <= 2  # a run shorter than a clock tick has none
        if r["cpu_ratios"]:
            assert r["cpu_min"] <= r["cpu_median"] <= r["cpu_max"]
    assert "asocket / peer" in stdout
    if HAS_MATPLOTLIB:
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "chart skipped" in stdout and not chart.exists()


def test_servers_python_loadgen(tmp_path: Path) -> None:
    doc, stdout = run_servers(
        tmp_path, "--loadgen=python", "--workloads=echo,bulk", "--only=asocket-sync,stdlib-threads"
    )
    assert doc["loadgen"] == "python"
    assert "NOTE: Python load generator" in stdout
    check_rows(
        doc,
        {
            "echo": {"asocket-sync", "stdlib-threads"},
            "bulk": {"asocket-sync", "stdlib-threads"},
        },
    )
    # The saved run, reported again without running anything.
    md = tmp_path / "tables.md"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "servers.py"),
            f"--from-json={tmp_path / 'results.json'}",
            f"--markdown={md}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bulk: sync face / stdlib" in done.stdout
    assert md.read_text().startswith("| workload | asocket | peer |")


@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("uvloop", "anyio", "trio")),
    reason="bench.py needs uvloop, anyio and trio (pip install '.[bench]')",
)
def test_bench_in_process_smoke() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bench.py"), "--smoke", "--sections=recv,pingpong,bulk"],
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "failed" not in done.stdout, done.stdout
    for title in ("1. recv", "2. 1-byte ping-pong", "3. bulk"):
        assert title in done.stdout


def test_servers_compare(tmp_path: Path) -> None:
    """--compare runs each asocket server a second time with another checkout's asocket
    (here: this one) and reports their ratio per round."""
    doc, stdout = run_servers(
        tmp_path,
        "--workloads=pingpong",
        "--only=asocket-sync",
        f"--compare={BENCHMARKS.parent}",
    )
    check_rows(doc, {"pingpong": {"asocket-sync", "asocket-sync:other"}})
    assert doc["compare"] == str(BENCHMARKS.parent)
    [ratio] = doc["ratios"]
    assert ratio["label"] == "ping-pong: asocket sync face (threads) / --compare"
    assert ratio["target"] is None and ratio["met"] is None
    assert len(ratio["ratios"]) == 2
    assert "asocket-sync:other" in stdout


@pytest.mark.skipif(
    not (shutil.which("valgrind") and shutil.which("callgrind_control")),
    reason="instructions.py needs valgrind",
)
def test_instructions_smoke() -> None:
    """benchmarks/instructions.py counts every server it is given, and the ratio of a
    pair is printed (a few rounds: the count is not asserted, only that it is one)."""
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "instructions.py"),
            "--rounds=3",
            "--pause=0.001",
            "--workloads=pingpong",
            "--only=asocket-sync,stdlib-threads",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("  ")]
    counts = {row[0]: float(row[1].replace(",", "")) for row in rows if len(row) == 2}
    assert set(counts) == {"asocket-sync", "stdlib-threads"}
    assert all(count > 0 for count in counts.values())
    assert "asocket-sync / stdlib-threads:" in done.stdout
