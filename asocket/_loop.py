"""What both event-loop waiters share: their loop, the clock, resolution and sleep."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ._waiter import AddrInfo, getaddrinfo


class LoopWaiter:
    """Base of ``ReadinessWaiter`` and ``CompletionWaiter``; one instance per loop."""

    clock = staticmethod(time.monotonic)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    async def getaddrinfo(
        self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[AddrInfo]:
        """The stdlib's own ``getaddrinfo`` on the loop's executor (uvloop's native one
        differs from it in details)."""
        return await self.loop.run_in_executor(
            None, getaddrinfo, host, port, family, type, proto, flags
        )

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(delay)
