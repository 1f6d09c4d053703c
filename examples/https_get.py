"""A minimal HTTPS GET with asocket: TLS, one request, the whole response.

    python examples/https_get.py --host 127.0.0.1 --port 8443 --cafile ca.pem /

Connects with asocket.create_connection(..., ssl=context) (certificate
verified, SNI and ALPN "http/1.1"), sends an HTTP/1.1 request with
"Connection: close", and writes the response (status line, headers, body)
to stdout as received, until the server closes. Try it against a local
server, e.g. ``openssl s_server -www -cert server.pem -key server.key
-accept 8443``. --timeout bounds the connect, the handshake and each read.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys

import asocket


async def get(host: str, port: int, path: str, context: ssl.SSLContext, timeout: float) -> None:
    sock = await asocket.create_connection((host, port), timeout=timeout, ssl=context)
    async with sock:
        request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        await sock.sendall(request.encode("ascii"))
        while data := await sock.recv(65536):  # b"": the server is done
            sys.stdout.buffer.write(data)
        sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description="HTTPS GET over asocket TLS.")
    parser.add_argument("path", nargs="?", default="/", help="path to get (default: /)")
    parser.add_argument("--host", default="127.0.0.1", help="server (default: %(default)s)")
    parser.add_argument("--port", type=int, default=443, help="port (default: %(default)s)")
    parser.add_argument("--cafile", help="CA certificates to trust (PEM); default: the system's")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds (default: %(default)s)"
    )
    args = parser.parse_args()
    context = ssl.create_default_context(cafile=args.cafile)
    context.set_alpn_protocols(["http/1.1"])
    try:
        asyncio.run(get(args.host, args.port, args.path, context, args.timeout))
    except (OSError, ssl.SSLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
