import asocket.sync as socket  # instead of: import socket


def echo(sock: socket.socket, address: object) -> None:
    while data := sock.recv(65536):
        sock.sendall(data)


with socket.serve_tcp(echo, "127.0.0.1", 0) as server:
    port = server.sockets[0].getsockname()[1]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"hello")
        print(sock.recv(1024))  # b'hello'
