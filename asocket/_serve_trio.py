"""``serve_tcp`` / ``serve_unix`` under trio: the same ``Server`` surface, trio's tasks.

``serve_tcp`` returns once the listeners listen, as on asyncio, so the server's
tasks cannot live in a nursery of the caller's (the call has returned). They
belong to a *system task* of the running ``trio.run``, one per server
(``trio.lowlevel.spawn_system_task``): its nursery holds one accept loop per
listener and one task per connection. ``close()`` cancels the accept loops;
``wait_closed()`` waits for the handlers (the grace period), then cancels
them; if the run's main task returns first, trio cancels the system task and
with it every handler. Nothing escapes the system task: a handler's exception
is logged as on asyncio.

Imported only under trio (by ``_serve_async``, when the running waiter is trio's).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Sequence
from typing import Any, Self

import trio
from trio.lowlevel import ParkingLot, Task, current_task, spawn_system_task

from . import _serve_policy as policy
from ._async import AsyncSocket
from ._serve_async import Handler, Server
from ._waiters.current import current as current_waiter


class _Conn:
    __slots__ = ("address", "scope", "sock", "task")

    def __init__(self, sock: AsyncSocket, address: Any) -> None:
        self.sock = sock
        self.address = address
        self.scope = trio.CancelScope()
        self.task: Task | None = None


class TrioServer(Server):
    """``Server`` under trio: the accept loops and handlers run in a system task."""

    def __init__(
        self,
        listeners: Sequence[AsyncSocket],
        handler: Handler,
        max_connections: int | None,
        grace_period: float | None,
        on_close: Callable[[AsyncSocket], None] | None = None,
        *,
        tls: Any = None,
    ) -> None:
        # (Server.__init__ is not called: it makes asyncio's tasks and events.)
        # tls: (context, handshake timeout) for serve_tcp(ssl=...), as Server takes it.
        self._tls_args = tls
        self.sockets = tuple(listeners)
        self._handler = handler
        self._max = max_connections
        self._grace = grace_period
        self._on_close = on_close
        self._conns: dict[AsyncSocket, _Conn] = {}
        self._shut_conns: set[AsyncSocket] = set()
        self._changed = ParkingLot()  # unparked whenever a handler ends
        self._is_closed = trio.Event()
        self._accepting = trio.Event()  # set once every accept loop has ended
        self._accept_scope = trio.CancelScope()
        self._nursery: trio.Nursery | None = None
        for sock in self.sockets:
            sock.settimeout(None)
        spawn_system_task(self._main, name=f"asocket server {self.sockets[0].getsockname()!r}")

    @property
    def active_connections(self) -> int:
        """How many handlers are running."""
        return len(self._conns)

    async def _main(self) -> None:
        # Cancelled (not caught) when the run's main task ends: the handlers with it.
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                with self._accept_scope:
                    async with trio.open_nursery() as accepters:
                        for sock in self.sockets:
                            accepters.start_soon(self._accept_loop, sock)
                self._accepting.set()
        finally:
            self._accepting.set()
            self.close()

    async def _wait_room(self) -> None:
        while self._max is not None and len(self._conns) >= self._max:
            await self._changed.park()

    async def _accept_loop(self, listener: AsyncSocket) -> None:
        accepts = policy.AcceptPolicy(listener)
        while True:
            await self._wait_room()
            try:
                conn, address = await listener.accept()
                await self._start(conn, address)
            except Exception as exc:
                delay = accepts.failed(exc)
                if delay is None:
                    return
                await trio.sleep(delay)
                continue
            accepts.accepted()

    async def _start(self, conn: AsyncSocket, address: Any) -> None:
        try:
            await self._wait_room()  # another listener may have taken the last slot
            assert self._nursery is not None
            entry = self._conns[conn] = _Conn(conn, address)
            self._nursery.start_soon(self._run_handler, entry)
        except BaseException:
            self._conns.pop(conn, None)
            conn.close()
            raise

    async def _run_handler(self, entry: _Conn) -> None:
        entry.task = current_task()
        try:
            with entry.scope:
                if self._tls_args is not None and not await self._handshake(entry):
                    return
                await self._handler(entry.sock, entry.address)
        except Exception:
            if entry.sock not in self._shut_conns:
                policy.log_handler_error(entry.address)
        finally:
            self._conns.pop(entry.sock, None)
            entry.sock.close()
            self._shut_conns.discard(entry.sock)
            self._changed.unpark_all()

    async def _handshake(self, entry: _Conn) -> bool:
        """``serve_tcp(ssl=...)``: asocket's TLS handshake before the handler, as
        ``Server`` does it; False if it failed (logged; the connection is closed)."""
        tls_engine: Any = importlib.import_module("asocket._tls")
        make = importlib.import_module("asocket._async").AsyncSSLSocket._from_inner
        context, timeout = self._tls_args
        waiter = current_waiter()
        until = tls_engine.handshake_deadline(waiter, None, timeout)
        try:
            tls = await tls_engine.handshake_new(
                waiter, make, entry.sock, context, True, None, until
            )
        except Exception as exc:
            tls_engine.log_handshake_failure(entry.address, exc)
            return False
        self._conns[tls] = self._conns.pop(entry.sock)  # the server closes it from now on
        entry.sock = tls
        return True

    def close(self) -> None:
        """Stop accepting and close the listening sockets; handlers keep running."""
        if self._is_closed.is_set():
            return
        self._is_closed.set()
        self._accept_scope.cancel()
        for sock in self.sockets:
            if self._on_close is not None:
                self._on_close(sock)
            sock.close()

    def close_clients(self) -> None:
        """Cancel every running handler now, but the caller's own (see ``Server``)."""
        me = _current_task_or_none()
        for entry in self._conns.values():
            if entry.task is not me:
                entry.scope.cancel()

    def _running(self, me: Task | None) -> list[_Conn]:
        return [entry for entry in self._conns.values() if entry.task is not me]

    async def _until_ended(self, me: Task | None) -> None:
        while self._running(me):
            await self._changed.park()

    async def wait_closed(self) -> None:
        """As ``Server.wait_closed``: after ``close()``, the handlers get the grace period,
        then are cancelled; one still running ``UNWIND`` seconds later is abandoned."""
        await self._is_closed.wait()
        await self._accepting.wait()
        me = current_task()
        try:
            if self._running(me) and self._grace != 0:
                grace = math.inf if self._grace is None else self._grace
                with trio.move_on_after(grace):
                    await self._until_ended(me)
        finally:
            self._grace = 0
            self.close_clients()
        if not self._running(me):
            return
        with trio.move_on_after(policy.UNWIND):
            await self._until_ended(me)
        for entry in self._running(me):
            self._shut_conns.add(entry.sock)
            entry.sock.close()
            policy.log_abandoned(entry.address)

    async def serve_forever(self) -> None:
        """Wait until the server is closed or this call is cancelled, then close it and
        do what ``wait_closed()`` does (shielded: the shutdown is bounded by the grace
        period and ``UNWIND``)."""
        try:
            await self._is_closed.wait()
        finally:
            self.close()
            with trio.CancelScope(shield=True):
                await self.wait_closed()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()


def _current_task_or_none() -> Task | None:
    try:
        return current_task()
    except RuntimeError:
        return None
