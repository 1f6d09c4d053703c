"""The socket operations: what each waits for, and where its ``flags`` argument stands.

Shared by the engine (which op waits for which readiness, which flags change
how it waits) and the waiters (which know nothing else of the semantics).
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

READ: Final = 0
WRITE: Final = 1


class Op(NamedTuple):
    """One socket operation: its name, the readiness it waits for, and where its
    ``flags`` argument stands among the syscall's arguments (None: it has none)."""

    name: str
    event: int
    flags_at: int | None = None

    def flags(self, args: tuple[Any, ...]) -> int:
        """The ``flags`` value in ``args`` (0 where none was given)."""
        at = self.flags_at
        if at is None or len(args) <= at or (self.name == "sendto" and len(args) == 2):
            return 0
        flags: int = args[at]
        return flags


ACCEPT: Final = Op("accept", READ)
RECV: Final = Op("recv", READ, 1)
RECV_INTO: Final = Op("recv_into", READ, 2)
RECVFROM: Final = Op("recvfrom", READ, 1)
RECVFROM_INTO: Final = Op("recvfrom_into", READ, 2)
RECVMSG: Final = Op("recvmsg", READ, 2)
RECVMSG_INTO: Final = Op("recvmsg_into", READ, 2)
SEND: Final = Op("send", WRITE, 1)
SENDALL: Final = Op("sendall", WRITE, 1)
SENDTO: Final = Op("sendto", WRITE, 1)
SENDMSG: Final = Op("sendmsg", WRITE, 2)
SENDFILE: Final = Op("sendfile", WRITE)
CONNECT: Final = Op("connect", WRITE)
