"""An asyncio TLS echo server built on asocket.serve_tcp(ssl=...).

Every byte a client sends through TLS comes straight back to it:

    python examples/tls_echo_server.py --cert server.pem --key server.key --port 8443
    python examples/tls_echo_client.py --cafile ca.pem --port 8443 hello
    openssl s_client -connect 127.0.0.1:8443 -CAfile ca.pem -quiet

A certificate and key for trying it out (self-signed, for 127.0.0.1 and
localhost; the certificate is its own CA, so pass it as --cafile too):

    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \\
        -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \\
        -keyout server.key -out server.pem

serve_tcp does each TLS handshake before the handler runs (bounded by
--handshake-timeout): a client that fails it, sends something other than
TLS or stays silent is logged in one line and never reaches the handler.
Ctrl-C (SIGINT) or SIGTERM stops the server (a second one closes the open
connections at once); it exits with status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
from typing import Any

import asocket


async def echo(sock: asocket.SSLSocket, address: Any) -> None:
    """Handle one TLS connection (an asocket.SSLSocket, handshake done): send back
    every byte until the client closes."""
    try:
        while data := await sock.recv(65536):  # b"": the client closed (or a ragged EOF)
            await sock.sendall(data)
    except (ConnectionError, ssl.SSLError) as exc:
        logging.info("%s: %s", address[0], exc)


async def serve(args: argparse.Namespace) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    server = await asocket.serve_tcp(
        echo,
        args.host,
        args.port,
        ssl=context,
        ssl_handshake_timeout=args.handshake_timeout,
    )
    stop = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():
            server.close_clients()  # the second signal: close the connections now
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    async with server:
        for listener in server.sockets:
            host, port = listener.getsockname()[:2]
            print(f"listening on {f'[{host}]' if ':' in host else host}:{port}", flush=True)
        await stop.wait()
        server.close()
    logging.info("stopped")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Async TLS echo server (asocket.serve_tcp with ssl=). "
        "Make a test certificate with: openssl req -x509 -newkey ec "
        "-pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost "
        "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout server.key -out server.pem",
    )
    parser.add_argument("--cert", required=True, help="certificate chain file (PEM)")
    parser.add_argument("--key", help="private key file (PEM; default: in --cert)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8443, help="port; 0 picks a free one (default: %(default)s)"
    )
    parser.add_argument(
        "--handshake-timeout",
        type=float,
        default=10.0,
        help="seconds a client gets to finish its handshake (default: %(default)s)",
    )
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
