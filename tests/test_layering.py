"""The import rules of DESIGN.md, kept true by scanning the package with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "asocket"

LOOP_FREE = {"_core", "_resolve", "_connect", "_server", "_timeouts", "_waiter", "_stdlib"}
WAITERS = {"_loop", "_loop_readiness", "_loop_completion", "_poll", "_waiter"}
NO_ASYNCIO = {"_sync", "_poll", "_serve_threads", "sync"}
FORBIDDEN_IN_CORE = {"asyncio", "select", "selectors", "threading", "uvloop", "anyio", "trio"}
RE_EXPORT_ONLY = {"__init__", "sync"}


def imports(module: str) -> set[str]:
    """Every module ``module`` imports (absolute names; relative ones as ``.name``)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.module:
                    found.add(f".{node.module}")
                else:
                    found.update(f".{alias.name}" for alias in node.names)
            else:
                found.add(node.module or "")
    return found


def modules() -> list[str]:
    return sorted(p.stem for p in PACKAGE.glob("*.py"))


@pytest.mark.parametrize("module", sorted(LOOP_FREE))
def test_core_modules_import_no_loop_or_thread_machinery(module: str) -> None:
    roots = {name.split(".")[0] for name in imports(module)}
    assert not roots & FORBIDDEN_IN_CORE


@pytest.mark.parametrize("module", sorted(WAITERS))
def test_waiters_know_nothing_of_semantics(module: str) -> None:
    assert "._core" not in imports(module)


@pytest.mark.parametrize("module", sorted(NO_ASYNCIO))
def test_sync_face_never_imports_asyncio(module: str) -> None:
    assert "asyncio" not in {name.split(".")[0] for name in imports(module)}


@pytest.mark.parametrize("module", modules())
def test_library_never_imports_uvloop(module: str) -> None:
    assert "uvloop" not in {name.split(".")[0] for name in imports(module)} or module == "_cli"


@pytest.mark.parametrize("module", sorted(RE_EXPORT_ONLY))
def test_face_modules_only_re_export(module: str) -> None:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    for node in tree.body:
        assert isinstance(
            node, ast.Import | ast.ImportFrom | ast.Assign | ast.AugAssign | ast.Expr
        ), f"{module}.py defines {type(node).__name__}: put it in a private module"
