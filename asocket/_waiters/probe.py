"""A look at a descriptor's readiness that never waits: the engine's read hint asks it
whether a read would find something (``_engine.waits_first``) before choosing to wait first.
"""

from __future__ import annotations

import select
from collections.abc import Callable
from typing import Any

_poll = getattr(select, "poll", None)


def _always(timeout: float) -> list[Any]:  # pragma: no cover - no poll() (Windows)
    return [True]


def probe(fd: int) -> Callable[[float], list[Any]]:
    """A callable that reports ``fd``'s readability now when called with ``0``: a
    non-empty list if data, end of file or an error is pending (``poll()`` without a
    timeout). Where there is no ``poll()`` it always says so (the reader then tries)."""
    if _poll is None:  # pragma: no cover - Windows
        return _always
    poller = _poll()
    poller.register(fd, select.POLLIN)
    look: Callable[[float], list[Any]] = poller.poll
    return look
