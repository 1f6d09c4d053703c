"""What both event-loop waiters share: their loop, the clock, resolution and sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from ._timeouts import timed_out
from ._waiter import AddrInfo, getaddrinfo


class LoopWaiter:
    """Base of ``ReadinessWaiter`` and ``CompletionWaiter``; one instance per loop."""

    clock = staticmethod(time.monotonic)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    async def getaddrinfo(
        self,
        host: Any,
        port: Any,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
        *,
        deadline: float | None = None,
    ) -> list[AddrInfo]:
        """The stdlib's own ``getaddrinfo`` on the loop's executor (uvloop's native one
        differs from it in details); ``TimeoutError`` at ``deadline``."""
        lookup = self.loop.run_in_executor(
            None, getaddrinfo, host, port, family, type, proto, flags
        )
        if deadline is None:
            return await lookup
        try:
            async with asyncio.timeout_at(self.loop.time() + deadline - self.clock()):
                return await lookup
        except TimeoutError:
            raise timed_out() from None

    async def wait(self, fd: int, event: int, deadline: float | None) -> None:
        raise NotImplementedError  # pragma: no cover - each waiter has its own

    async def wait_any(self, fds: Sequence[int], event: int, deadline: float | None) -> list[int]:
        """Wait on each fd with :meth:`wait` at once: the fds whose wait returned first;
        ``[]`` at ``deadline``."""
        if len(fds) == 1:  # the usual case (one attempt under way): no task needed
            try:
                await self.wait(fds[0], event, deadline)
            except TimeoutError:
                return []
            return list(fds)
        waits = [asyncio.ensure_future(self.wait(fd, event, None)) for fd in fds]
        try:
            timeout = None if deadline is None else max(0.0, deadline - self.clock())
            done, _ = await asyncio.wait(
                waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        return [fd for fd, task in zip(fds, waits, strict=True) if task in done]

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(delay)
