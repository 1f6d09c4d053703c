"""An asyncio TLS client for tls_echo_server.py (or any TLS echo service).

Connects with asocket.create_connection(..., ssl=context), sends each
MESSAGE as one line, waits for it to come back, prints the reply:

    python examples/tls_echo_client.py --cafile ca.pem --port 8443 hello world

The server's certificate is verified against --cafile (else the system's
CAs) and must name --server-hostname (default: --host). --timeout bounds
the connect, the handshake and every wait for a reply; on an error the
client prints it and exits with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys

import asocket


async def recv_exactly(sock: asocket.SSLSocket, size: int) -> bytes:
    """Receive exactly ``size`` bytes of plaintext (a reply may come in pieces)."""
    data = bytearray()
    while len(data) < size:
        chunk = await sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    return bytes(data)


async def client(args: argparse.Namespace) -> None:
    context = ssl.create_default_context(cafile=args.cafile)
    sock = await asocket.create_connection(
        (args.host, args.port),
        timeout=args.timeout,  # bounds the connect and the handshake together
        ssl=context,
        server_hostname=args.server_hostname,  # None: the host connected to
    )
    async with sock:
        print(f"# {sock.version()} {sock.cipher()}", file=sys.stderr)
        for message in args.messages:
            line = message.encode() + b"\n"
            await sock.sendall(line)
            sys.stdout.buffer.write(await recv_exactly(sock, len(line)))
            sys.stdout.flush()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Async TLS echo client (asocket).")
    parser.add_argument("messages", nargs="+", metavar="MESSAGE", help="lines to send")
    parser.add_argument("--host", default="127.0.0.1", help="server (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8443, help="port (default: %(default)s)")
    parser.add_argument("--cafile", help="CA certificates to trust (PEM); default: the system's")
    parser.add_argument(
        "--server-hostname", help="name the certificate must match (default: --host)"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds (default: %(default)s)"
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        asyncio.run(client(args))
    except (OSError, ssl.SSLError) as exc:  # TimeoutError and certificate errors included
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
