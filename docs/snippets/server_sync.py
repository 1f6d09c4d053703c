import asocket.sync as socket


def echo(sock: socket.socket, address: object) -> None:  # runs in a thread of its own
    while data := sock.recv(65536):
        sock.sendall(data)


server = socket.serve_tcp(echo, "127.0.0.1", 0, max_connections=100, grace_period=1.0)
with server:  # on exit: close(), then wait_closed()
    port = server.sockets[0].getsockname()[1]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"ping")
        print(sock.recv(1024))  # b'ping'
