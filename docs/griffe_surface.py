"""A griffe extension for the docs site: the faces' methods and shared module functions
take their docstrings from ``asocket._surface`` at import time (so the text exists once);
this gives the statically read signatures pages the same docstrings."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import griffe

SURFACE = Path(__file__).resolve().parent.parent / "asocket" / "_surface.py"
FACES = {"asocket._async": "AsyncSocket", "asocket._sync": "SyncSocket"}


def _tables() -> dict[str, dict[str, str]]:
    """``METHODS`` and ``FUNCTIONS`` of ``_surface.py``, read without importing asocket."""
    tables: dict[str, dict[str, str]] = {}
    for node in ast.parse(SURFACE.read_text()).body:
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id in ("METHODS", "FUNCTIONS")
            and node.value is not None
        ):
            tables[node.target.id] = ast.literal_eval(node.value)
    return tables


class SurfaceDocstrings(griffe.Extension):
    """Fill in the docstrings ``asocket._surface`` applies at import time."""

    def __init__(self) -> None:
        self.tables = _tables()

    def on_function_instance(self, *, node: Any, func: griffe.Function, **kwargs: Any) -> None:
        if func.docstring is not None:
            return
        parent = func.parent
        text = None
        if parent is not None and parent.is_class and FACES.get(parent.module.path) == parent.name:
            text = self.tables["METHODS"].get(func.name)
        elif parent is not None and parent.is_module and parent.path in FACES:
            text = self.tables["FUNCTIONS"].get(func.name)
        if text is not None:
            func.docstring = griffe.Docstring(inspect.cleandoc(text), parent=func)
