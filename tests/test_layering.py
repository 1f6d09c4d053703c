"""The import rules of docs/design.md ("What may import what"), kept true by
scanning the package with ``ast``.

- The semantics (the engine, resolution, the drivers, the shared state) never
  import an event loop, a selector or threads: they await an injected waiter.
- The waiters know nothing of the semantics: they never import the engine, the
  faces or the drivers.
- The sync face never imports asyncio (nor anything that does).
- Library code never imports uvloop, trio or anyio at import time.
- ``__init__`` and ``sync`` only re-export.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "asocket"

LOOP_FREE = {
    "_engine",
    "_socket",
    "_resolve",
    "_connect",
    "_listeners",
    "_serve_policy",
    "_timeouts",
    "_ops",
    "_stdlib",
    "_surface",
    "_gate",
    "_tls",
    "_waiters.base",
}
SEMANTICS = {"_engine", "_socket", "_connect", "_listeners", "_resolve", "_gate", "_async", "_sync"}
NO_ASYNCIO = {"_sync", "_gate", "_serve_threads", "sync", "_waiters.poll", "_waiters.base"}
FORBIDDEN_IN_CORE = {"asyncio", "select", "selectors", "threading", "uvloop", "anyio", "trio"}
OPTIONAL = {"uvloop", "trio", "anyio", "httpcore", "httpx"}
RE_EXPORT_ONLY = {"__init__", "sync", "_waiters.__init__"}
# The adapters, imported only by a program that uses what they adapt (``asocket.anyio``,
# ``asocket.httpcore``), or only once a call runs under trio (the trio waiter, the server).
ADAPTERS = {"anyio", "httpcore", "_waiters.trio", "_serve_trio"}


def path(module: str) -> Path:
    return PACKAGE.joinpath(*module.split(".")).with_suffix(".py")


def modules() -> list[str]:
    return sorted(
        ".".join(p.relative_to(PACKAGE).with_suffix("").parts) for p in PACKAGE.rglob("*.py")
    )


def imports(module: str, top_level_only: bool = False) -> set[str]:
    """Every module ``module`` imports, as absolute names (``asocket._engine``); with
    ``top_level_only``, only the imports that run when the module is imported."""
    tree = ast.parse(path(module).read_text())
    package = ["asocket", *module.split(".")[:-1]]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                if node.module:
                    found.add(".".join([*base, node.module]))
                else:
                    found.update(".".join([*base, alias.name]) for alias in node.names)
            else:
                found.add(node.module or "")
    return found


def roots(module: str, top_level_only: bool = False) -> set[str]:
    return {name.split(".")[0] for name in imports(module, top_level_only)}


def test_the_rule_sets_name_existing_modules() -> None:
    existing = set(modules())
    for group in (LOOP_FREE, SEMANTICS, NO_ASYNCIO, RE_EXPORT_ONLY, ADAPTERS - {"_serve_trio"}):
        assert group <= existing, group - existing


@pytest.mark.parametrize("module", sorted(LOOP_FREE))
def test_semantics_import_no_loop_or_thread_machinery(module: str) -> None:
    assert not roots(module) & FORBIDDEN_IN_CORE


@pytest.mark.parametrize("module", [m for m in modules() if m.startswith("_waiters.")])
def test_waiters_know_nothing_of_semantics(module: str) -> None:
    semantics = {f"asocket.{name}" for name in SEMANTICS}
    assert not imports(module) & semantics


@pytest.mark.parametrize("module", sorted(NO_ASYNCIO))
def test_sync_face_never_imports_asyncio(module: str) -> None:
    assert "asyncio" not in roots(module)


@pytest.mark.parametrize("module", modules())
def test_library_never_imports_optional_packages_at_import_time(module: str) -> None:
    assert not roots(module, top_level_only=True) & (OPTIONAL - {"uvloop"}) or module in ADAPTERS
    assert "uvloop" not in roots(module) or module == "_cli"


@pytest.mark.parametrize("module", sorted(RE_EXPORT_ONLY))
def test_face_modules_only_re_export(module: str) -> None:
    tree = ast.parse(path(module).read_text())
    for node in tree.body:
        assert isinstance(
            node, ast.Import | ast.ImportFrom | ast.Assign | ast.AugAssign | ast.Expr
        ), f"{module}.py defines {type(node).__name__}: put it in a private module"
