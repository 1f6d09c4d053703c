"""Both faces' sockets handed to other processes, as ``multiprocessing`` hands the stdlib's.

``multiprocessing.reduction`` registers a reducer for ``socket.socket`` with its
``ForkingPickler``: the descriptor travels (``DupFd``: inherited by a spawned
child, or sent over a Unix socket to a pool worker) and the child rebuilds a
socket on it. Each face registers its class the same way here; the child gets
the same face's class, in the same mode (timeout). Plain ``pickle`` still
refuses (``TypeError: cannot pickle 'socket' object``): only ``ForkingPickler``
consults these reducers.

Importing ``multiprocessing`` costs more than importing asocket itself, so it
is never imported here. A class is registered at once if
``multiprocessing.reduction`` is already imported; otherwise a finder placed
first on ``sys.meta_path`` waits for that import (a string comparison per
import until then), registers the classes right after the module has run, and
removes itself. ``multiprocessing`` imports ``multiprocessing.reduction``
itself, before anything can pickle with ``ForkingPickler``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from ._socket import SocketBase

_TARGET = "multiprocessing.reduction"
_classes: list[type[SocketBase]] = []


def register(cls: type[SocketBase]) -> None:
    """Let ``multiprocessing`` pass sockets of ``cls`` to other processes (now if its
    reducer module is imported, else as soon as it is)."""
    _classes.append(cls)
    module = sys.modules.get(_TARGET)
    if module is not None and hasattr(module, "ForkingPickler"):
        _register_with(module)
    elif not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def _register_with(module: ModuleType) -> None:
    for cls in _classes:
        module.ForkingPickler.register(cls, _reduce)


def _reduce(sock: SocketBase) -> tuple[Any, tuple[Any, ...]]:
    """The reducer: a duplicate of the descriptor made for the receiving process."""
    from multiprocessing.reduction import DupFd  # imported already: we are pickling with it

    fd = DupFd(sock.fileno())
    return _rebuild, (type(sock), fd, sock.family, sock.type, sock.proto, sock.gettimeout())


def _rebuild(
    cls: type[SocketBase], fd: Any, family: int, type: int, proto: int, timeout: float | None
) -> SocketBase:
    """In the receiving process: a socket of the sender's face on the descriptor, in its mode."""
    sock = cls(family, type, proto, fd.detach())
    sock.settimeout(timeout)
    return sock


class _Finder:
    """Finds nothing itself; wraps the loader of ``multiprocessing.reduction`` so that the
    classes are registered as soon as that module has run (the finder then leaves
    ``sys.meta_path``)."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> Any:
        if fullname != _TARGET:
            return None
        for finder in sys.meta_path:
            find = None if finder is self else getattr(finder, "find_spec", None)
            spec = None if find is None else find(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _Loader(spec.loader)
                return spec
        return None  # pragma: no cover - multiprocessing missing


class _Loader:
    """Runs the real loader, then registers the classes with the module's ``ForkingPickler``."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> ModuleType | None:
        module: ModuleType | None = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        _register_with(module)
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _Finder)]

    def __getattr__(self, name: str) -> Any:  # get_source, is_package... for tools
        return getattr(self._loader, name)
