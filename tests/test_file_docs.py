"""The runnable examples of docs/files.md run and print what the page says.

Each fenced Python block that ends with ``asyncio.run(main())`` runs in a fresh
interpreter, on loopback, with warnings as errors (an unclosed socket fails it).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parent.parent / "docs" / "files.md"
BLOCKS = [
    block
    for block in re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    if block.rstrip().endswith("asyncio.run(main())")
]
# What each runnable block prints, in page order (its print() comments say the same).
OUTPUT = [
    "b'HELLO\\n'\nb'WORLD\\n'\n",
    "5\n0\n100000\n",
]


def test_every_runnable_block_is_run() -> None:
    assert len(BLOCKS) == len(OUTPUT)


@pytest.mark.parametrize("index", range(len(OUTPUT)))
def test_block(index: int) -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", BLOCKS[index]],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == OUTPUT[index]
