"""Fetch a URL with httpx, every byte going through asocket (``asocket.httpcore``).

    python examples/httpx_client.py http://127.0.0.1:8000/
    python examples/httpx_client.py https://127.0.0.1:8443/ --cafile ca.pem --trio
    python examples/httpx_client.py http://127.0.0.1:8000/ --sync

Prints the status line to stderr and the body to stdout. ``--trio`` runs under
``trio.run`` instead of asyncio, ``--sync`` uses ``httpx.Client`` on
``asocket.sync``. ``--cafile`` trusts the given CA (e.g. a test certificate's).

httpx builds its own httpcore pool; ``async_transport`` / ``sync_transport``
return httpx's transport with its pool rebuilt on asocket's network backend,
with the same TLS context, limits and HTTP versions.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys

import httpcore
import httpx

import asocket.httpcore

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


def _context(verify: ssl.SSLContext | bool) -> ssl.SSLContext:
    return httpx.create_ssl_context(verify=verify)


def async_transport(
    verify: ssl.SSLContext | bool = True,
    *,
    http2: bool = False,
    limits: httpx.Limits = DEFAULT_LIMITS,
) -> httpx.AsyncHTTPTransport:
    """An ``httpx.AsyncHTTPTransport`` whose connections are asocket sockets."""
    transport = httpx.AsyncHTTPTransport(verify=verify, http2=http2, limits=limits)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=_context(verify),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=http2,
        network_backend=asocket.httpcore.AsyncBackend(),
    )
    return transport


def sync_transport(
    verify: ssl.SSLContext | bool = True,
    *,
    http2: bool = False,
    limits: httpx.Limits = DEFAULT_LIMITS,
) -> httpx.HTTPTransport:
    """An ``httpx.HTTPTransport`` whose connections are ``asocket.sync`` sockets."""
    transport = httpx.HTTPTransport(verify=verify, http2=http2, limits=limits)
    transport._pool = httpcore.ConnectionPool(
        ssl_context=_context(verify),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=http2,
        network_backend=asocket.httpcore.SyncBackend(),
    )
    return transport


def report(response: httpx.Response) -> None:
    status = f"{response.http_version} {response.status_code} {response.reason_phrase}"
    print(status, file=sys.stderr)
    print(response.text)


async def fetch(url: str, verify: ssl.SSLContext | bool, timeout: float) -> None:
    """GET ``url`` with ``httpx.AsyncClient`` over asocket (asyncio or trio)."""
    async with httpx.AsyncClient(transport=async_transport(verify), timeout=timeout) as client:
        report(await client.get(url))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="The server is named by URL, in place of the other examples' --host/--port.",
    )
    parser.add_argument("url", help="http:// or https:// URL to GET")
    parser.add_argument("--cafile", help="trust this CA bundle (PEM)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--trio", action="store_true", help="run under trio.run")
    kind.add_argument("--sync", action="store_true", help="httpx.Client on asocket.sync")
    args = parser.parse_args()
    verify: ssl.SSLContext | bool = True
    if args.cafile:
        verify = ssl.create_default_context(cafile=args.cafile)
    try:
        if args.sync:
            with httpx.Client(transport=sync_transport(verify), timeout=args.timeout) as client:
                report(client.get(args.url))
        elif args.trio:
            import trio

            trio.run(fetch, args.url, verify, args.timeout)
        else:
            asyncio.run(fetch(args.url, verify, args.timeout))
    except httpx.HTTPError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
