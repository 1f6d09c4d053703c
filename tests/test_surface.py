"""The public surface is declared once (``asocket._surface``) and both faces agree on it:
the same names, the same signatures (a coroutine on one face, a plain call on the
other), and a docstring on every public callable."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import asocket
import asocket.sync
from asocket import _stdlib, _surface

FACES = {"async": asocket, "sync": asocket.sync}
CLASSES = {"async": ["AsyncSocket", "Server"], "sync": ["SyncSocket", "ThreadedServer"]}


SHARED = asocket.__all__[2:]  # after each face's two classes


@pytest.mark.parametrize("face", FACES)
def test_both_faces_list_the_same_names(face: str) -> None:
    module = FACES[face]
    assert module.__all__ == [*CLASSES[face], *SHARED]
    assert SHARED[-len(_stdlib._NAMES) :] == _stdlib._NAMES
    for name in module.__all__:
        assert hasattr(module, name), name


def same(a: Any, b: Any) -> bool:
    """Same parameters: names, kinds and defaults (annotations and return types differ:
    each face names its own class, and the stdlib's functions have none)."""

    def shape(fn: Any) -> list[tuple[str, Any, Any]]:
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    return shape(a) == shape(b)


def public_methods(cls: type) -> dict[str, Any]:
    return {
        name: getattr(cls, name)
        for name in dir(cls)
        if not name.startswith("_") and callable(getattr(cls, name))
    }


def test_both_sockets_have_the_same_methods_and_signatures() -> None:
    a = public_methods(asocket.socket)
    s = public_methods(asocket.sync.socket)
    assert set(a) - {"makefile"} == set(s) - {"makefile"}
    # makefile() differs by design: binary "rb" by default on the async face, the
    # stdlib's text "r" on the sync face (docs/files.md has the table).
    for name in a.keys() & s.keys() - {"makefile"}:
        assert same(a[name], s[name]), name


def test_the_module_functions_have_the_same_signatures() -> None:
    for name in SHARED[: -len(_stdlib._NAMES)]:
        a, s = getattr(asocket, name), getattr(asocket.sync, name)
        ours = all(getattr(f, "__module__", "").startswith("asocket") for f in (a, s))
        if ours and inspect.isfunction(a) and inspect.isfunction(s):
            assert same(a, s), name


@pytest.mark.parametrize("face", FACES)
def test_every_public_callable_has_a_docstring(face: str) -> None:
    module = FACES[face]
    missing = []
    for name in [*CLASSES[face], *SHARED[: -len(_stdlib._NAMES)]]:
        obj = getattr(module, name)
        if not getattr(obj, "__module__", "").startswith("asocket"):
            continue  # the stdlib's own (the sync face's resolver functions)
        if not (obj.__doc__ or "").strip():
            missing.append(name)
        if inspect.isclass(obj):
            missing += [
                f"{name}.{m}"
                for m, fn in public_methods(obj).items()
                if not (inspect.getdoc(fn) or "").strip()
            ]
    assert not missing


def test_the_io_methods_are_coroutines_on_the_async_face_only() -> None:
    for name in _surface.METHODS:
        a = getattr(asocket.socket, name, None)
        s = getattr(asocket.sync.socket, name, None)
        if a is None or name in ("detach", "makefile"):
            continue
        assert inspect.iscoroutinefunction(a), name
        assert s is not None and not inspect.iscoroutinefunction(s), name


def test_docstrings_come_from_the_surface() -> None:
    for name, doc in _surface.METHODS.items():
        for cls in (asocket.socket, asocket.sync.socket):
            method = cls.__dict__.get(name)
            if method is not None:
                assert method.__doc__ == inspect.cleandoc(doc), (cls, name)
