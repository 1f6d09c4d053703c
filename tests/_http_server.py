"""A tiny threaded HTTP/1.1 server on 127.0.0.1 (plain or TLS with trustme certificates)
for the httpcore/httpx tests. Every wait in it is bounded; ``close()`` stops it.

Paths: ``GET /small`` (``hello``), ``POST /echo`` (the body's length and sha256),
``GET /slow`` (answers after ``SLOW`` seconds, or at close), ``GET /reset``
(sends headers and part of the body, then resets the connection), ``GET /peer``
(the client's port, to see keep-alive reuse).
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import trustme

SLOW = 5.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/small":
            self._reply(b"hello")
        elif self.path == "/peer":
            self._reply(str(self.client_address[1]).encode())
        elif self.path == "/slow":
            self.server.stopping.wait(SLOW)
            self._reply(b"late")
        elif self.path == "/reset":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            self.wfile.flush()
            raw = self.connection
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            if isinstance(raw, ssl.SSLSocket):
                raw = socket.socket(fileno=raw.detach())
            raw.close()  # SO_LINGER 0: RST
            self.close_connection = True
        else:
            self._reply(b"not found", 404)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        digest = hashlib.sha256()
        left = length
        while left:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
        self._reply(f"{length - left} {digest.hexdigest()}".encode())

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, context: ssl.SSLContext | None) -> None:
        self.stopping = threading.Event()
        self.context = context
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        if self.context is not None:
            sock.settimeout(5.0)
            sock = self.context.wrap_socket(sock, server_side=True)
        sock.settimeout(10.0)
        return sock, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # resets and handshake failures are part of the tests


class HTTPServer:
    """``HTTPServer(tls)`` serves on 127.0.0.1 in a thread; ``url``, ``client_context``."""

    ca: trustme.CA | None = None

    def __init__(self, tls: bool = False) -> None:
        self.client_context: ssl.SSLContext | None = None
        context = None
        if tls:
            if HTTPServer.ca is None:
                HTTPServer.ca = trustme.CA()
            cert = HTTPServer.ca.issue_cert("localhost", "127.0.0.1")
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(context)
            self.client_context = ssl.create_default_context()
            HTTPServer.ca.configure_trust(self.client_context)
        self._server = _Server(context)
        self.port = self._server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)

    def __enter__(self) -> HTTPServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
