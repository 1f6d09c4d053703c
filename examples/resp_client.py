"""A tiny Redis client: the RESP protocol on an asocket buffered file.

Sends one command and prints the reply as ``redis-cli`` does:

    python examples/resp_client.py --port 6379 SET greeting hello
    python examples/resp_client.py --port 6379 GET greeting        # "hello"
    python examples/resp_client.py --port 6379 --repeat 1000 INCR n  # pipelined

RESP (REdis Serialization Protocol) is a line protocol with length-prefixed
payloads, the two things ``sock.makefile("rwb")`` reads: each reply starts
with a line (``readuntil(b"\\r\\n")``), and a bulk string continues with
exactly as many bytes as that line said (``readexactly(n + 2)``).

--timeout bounds the connect and each command (the socket's timeout mode: one
deadline per call of the file); on a timeout or a connection error the client
prints the error and exits with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import asocket

CRLF = b"\r\n"
MAX_LINE = 64 * 1024  # a RESP header line is short; a longer one is a broken stream


class RespError(Exception):
    """An error reply from the server (``-ERR ...``): the command failed, the
    connection goes on."""


Reply = bytes | int | float | bool | None | RespError | list[Any] | dict[Any, Any]


def encode(args: Sequence[bytes | str | float]) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif not isinstance(arg, bytes):
            arg = str(arg).encode()  # int, float
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


async def read_reply(f: asocket.AsyncSocketFile) -> Reply:
    """Read one reply (RESP2, and the RESP3 scalars and maps). An error reply is
    returned as a :class:`RespError` (not raised), so a pipeline reads on."""
    line = await f.readuntil(CRLF, max_bytes=MAX_LINE)
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest
    if kind == b"-":
        return RespError(rest.decode(errors="replace"))
    if kind == b":":
        return int(rest)
    if kind in (b"$", b"="):  # bulk string (= verbatim string)
        size = int(rest)
        if size < 0:
            return None
        data = await f.readexactly(size + 2)
        return data[:-2]
    if kind in (b"*", b"~", b">"):  # array, set, push
        count = int(rest)
        if count < 0:
            return None
        return [await read_reply(f) for _ in range(count)]
    if kind == b"%":
        count = int(rest)
        return {await read_reply(f): await read_reply(f) for _ in range(count)}
    if kind == b"_":
        return None
    if kind == b"#":
        return rest == b"t"
    if kind == b",":
        return float(rest)
    if kind == b"(":
        return int(rest)
    raise ConnectionError(f"not a RESP reply: {line[:50]!r}")


class Redis:
    """One connection: ``await execute("GET", "key")``; ``pipeline()`` for many."""

    def __init__(self, sock: asocket.socket) -> None:
        self.sock = sock
        self.file = sock.makefile("rwb")

    @classmethod
    async def connect(cls, host: str, port: int, timeout: float | None = None) -> Redis:
        """Connect; ``timeout`` bounds the connect and then each call."""
        sock = await asocket.create_connection((host, port), timeout=timeout)
        return cls(sock)

    async def execute(self, *args: bytes | str | float) -> Reply:
        """Send one command and return its reply; raises :class:`RespError` for an error."""
        (reply,) = await self.pipeline([args])
        if isinstance(reply, RespError):
            raise reply
        return reply

    async def pipeline(self, commands: Iterable[Sequence[bytes | str | float]]) -> list[Reply]:
        """Send every command at once, then read their replies (errors as RespError)."""
        count = 0
        for args in commands:
            await self.file.write(encode(args))
            count += 1
        await self.file.flush()
        return [await read_reply(self.file) for _ in range(count)]

    async def aclose(self) -> None:
        """Close the file (sending anything left), then the socket."""
        try:
            await self.file.aclose()
        finally:
            self.sock.close()

    async def __aenter__(self) -> Redis:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def format_reply(reply: Any, indent: int = 0) -> str:
    """A reply as ``redis-cli`` prints it."""
    if isinstance(reply, RespError):
        return f"(error) {reply}"
    if reply is None:
        return "(nil)"
    if isinstance(reply, bool):
        return f"({str(reply).lower()})"
    if isinstance(reply, int):
        return f"(integer) {reply}"
    if isinstance(reply, float):
        return f"(double) {reply}"
    if isinstance(reply, bytes):
        return '"' + reply.decode("utf-8", "backslashreplace").replace('"', '\\"') + '"'
    if isinstance(reply, dict):
        reply = [x for pair in reply.items() for x in pair]
    if not reply:
        return "(empty array)"
    width = len(str(len(reply)))
    lines = []
    for i, item in enumerate(reply, 1):
        prefix = f"{i:>{width}}) "
        text = format_reply(item, indent + len(prefix))
        lines.append((" " * indent if i > 1 else "") + prefix + text)
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> int:
    try:
        async with await Redis.connect(args.host, args.port, args.timeout) as redis:
            replies = await redis.pipeline([args.command] * args.repeat)
    except (OSError, asocket.IncompleteReadError) as exc:  # TimeoutError included
        print(f"error: {exc!r}", file=sys.stderr)
        return 1
    for reply in replies:
        print(format_reply(reply))
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Send one Redis command and print the reply (RESP over asocket)."
    )
    parser.add_argument("--host", default="127.0.0.1", help="server address (127.0.0.1)")
    parser.add_argument("--port", type=int, default=6379, help="server port (6379)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per call (10)")
    parser.add_argument("--repeat", type=int, default=1, help="send the command N times")
    parser.add_argument("command", nargs="+", help="the command and its arguments")
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
