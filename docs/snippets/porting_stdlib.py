"""Handing asocket's sockets to stdlib modules: socketserver, http.client and ssl.

The stdlib modules make their sockets with their own ``import socket``, so they keep
the stdlib's sockets; each one has a place where a socket is made or adopted, and
that is where asocket's goes in. Runs on loopback and prints what it checks.
"""

import http.client
import http.server
import socket
import socketserver
import ssl
import threading

import asocket.sync


def kind(sock: object) -> str:
    return f"{type(sock).__module__}.{type(sock).__qualname__}"


class Server(socketserver.TCPServer):
    """A socketserver server on asocket's sockets: its listening socket is adopted
    before it binds, so every connection it accepts is asocket's too."""

    def server_bind(self) -> None:
        # asocket.sync.socket has every method of socket.socket but is not a subclass, so
        # mypy says: Incompatible types in assignment (expression has type "SyncSocket",
        # variable has type "socket")  [assignment]
        self.socket = asocket.sync.from_socket(self.socket)  # type: ignore[assignment]
        super().server_bind()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = kind(self.request).encode()  # the connection the server accepted
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # no access log on stderr


class HTTPConnection(http.client.HTTPConnection):
    """http.client on an asocket socket: connect() is where it makes its socket.
    (This one connects directly: no source_address, no set_tunnel() proxy.)"""

    def connect(self) -> None:
        # HTTPConnection.sock is typed "socket | Any": type checkers accept asocket's here.
        self.sock = asocket.sync.create_connection((self.host, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


with Server(("127.0.0.1", 0), Handler) as server:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        conn = HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
        conn.connect()
        print(kind(conn.sock))  # asocket.sync.socket
        conn.request("GET", "/")
        response = conn.getresponse()
        print(response.status, response.read().decode())  # 200 asocket.sync.socket
        conn.close()
    finally:
        server.shutdown()
        thread.join()

# ssl takes an asocket socket over: the descriptor moves to the stdlib's SSLSocket (the
# asocket socket is detached), which behaves as the stdlib's from then on.
# mypy says: Argument 1 to "wrap_socket" of "SSLContext" has incompatible type
# "SyncSocket"; expected "socket"  [arg-type]
a, b = asocket.sync.socketpair()
context = ssl.create_default_context()
tls = context.wrap_socket(a, server_hostname="localhost", do_handshake_on_connect=False)  # type: ignore[arg-type]
print(kind(tls), a.fileno())  # ssl.SSLSocket -1
tls.close()
b.close()
