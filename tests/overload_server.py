"""An echo server under a low descriptor limit, for ``test_overload.py`` to flood from outside.

``python tests/overload_server.py FACE [--nofile N] [--max-connections M] [--backlog B]``,
FACE one of ``asyncio``, ``uvloop``, ``threads`` (the sync face). It lowers the soft
``RLIMIT_NOFILE`` to N, serves ``serve_tcp`` echo on 127.0.0.1 (port 0), prints the port on
stdout, logs to stderr and serves until it is killed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import sys
from typing import Any

import asocket
import asocket.sync


async def echo(sock: asocket.socket, addr: Any) -> None:
    try:
        while data := await sock.recv(4096):
            await sock.sendall(data)
    except ConnectionError:  # a flood client closed with unread data: not news
        pass


def sync_echo(sock: asocket.sync.socket, addr: Any) -> None:
    try:
        while data := sock.recv(4096):
            sock.sendall(data)
    except ConnectionError:
        pass


async def serve_async(max_connections: int | None, backlog: int | None) -> None:
    server = await asocket.serve_tcp(
        echo, "127.0.0.1", 0, max_connections=max_connections, backlog=backlog
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("face", choices=["asyncio", "uvloop", "threads"])
    parser.add_argument("--nofile", type=int, default=64)
    parser.add_argument("--max-connections", type=int)
    parser.add_argument("--backlog", type=int)
    args = parser.parse_args()
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (args.nofile, hard))
    if args.face == "threads":
        server = asocket.sync.serve_tcp(
            sync_echo,
            "127.0.0.1",
            0,
            max_connections=args.max_connections,
            backlog=args.backlog,
        )
        print(server.sockets[0].getsockname()[1], flush=True)
        server.serve_forever()
        return
    factory = asyncio.new_event_loop
    if args.face == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve_async(args.max_connections, args.backlog))


if __name__ == "__main__":
    main()
