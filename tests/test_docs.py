"""The scripts the documentation includes (docs/snippets/) run and print what the pages say.

Each runs in a fresh interpreter, on loopback, with warnings as errors (an
unclosed socket fails it). Building the site itself (``mkdocs build --strict``)
needs the ``docs`` extra and is not part of the test suite.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SNIPPETS = Path(__file__).resolve().parent.parent / "docs" / "snippets"

# What each script prints; the same as the comments beside its print() calls.
OUTPUT = {
    "quickstart.py": "b'hello'\n",
    "quickstart_sync.py": "b'hello'\n",
    "server.py": "b'ping'\n",
    "server_sync.py": "b'ping'\n",
    "connect.py": "127.0.0.1 5.0\n(ConnectionRefusedError(111, 'Connection refused'),)\n",
    "porting_stdlib.py": "asocket.sync.socket\n200 asocket.sync.socket\nssl.SSLSocket -1\n",
}


def test_every_snippet_is_run() -> None:
    assert sorted(path.name for path in SNIPPETS.glob("*.py")) == sorted(OUTPUT)


@pytest.mark.parametrize("name", sorted(OUTPUT))
def test_snippet(name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", str(SNIPPETS / name)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == OUTPUT[name]
