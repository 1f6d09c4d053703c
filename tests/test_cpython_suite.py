"""CPython's own ``test_socket`` and ``test_timeout``, run through ``asocket.sync``.

Each module runs in a subprocess (``tests/cpython/run_stdlib_suite.py``), with
the stdlib ``socket`` module's callables replaced by ``asocket.sync``'s, as
gevent runs them against its sockets; the patch never reaches this process.
The left-out tests and the known bugs, each with its reason, are in
``tests/cpython/exclusions.py``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).parent / "cpython" / "run_stdlib_suite.py"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("module", ["test_socket", "test_timeout"])
def test_cpython_module(module: str) -> None:
    if importlib.util.find_spec(f"test.{module}") is None:  # pragma: no cover - stripped Python
        pytest.skip(f"CPython's test.{module} is not installed")
    proc = subprocess.run(
        [sys.executable, str(RUNNER), module],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    summary = [line for line in proc.stdout.splitlines() if line.startswith("SUMMARY")]
    print(proc.stdout)
    assert proc.returncode == 0 and summary, (
        f"{module} through asocket.sync: exit {proc.returncode}\n"
        f"{proc.stdout}\n{proc.stderr[-20000:]}"
    )
