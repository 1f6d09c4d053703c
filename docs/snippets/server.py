import asyncio

import asocket


async def echo(sock: asocket.socket, address: object) -> None:
    sock.settimeout(30)  # an idle client: recv raises TimeoutError; logged, connection closed
    while data := await sock.recv(65536):
        await sock.sendall(data)


async def main() -> None:
    server = await asocket.serve_tcp(echo, "127.0.0.1", 0, max_connections=100)
    async with server:  # on exit: close(), then wait_closed()
        port = server.sockets[0].getsockname()[1]
        async with await asocket.create_connection(("127.0.0.1", port)) as sock:
            await sock.sendall(b"ping")
            print(await sock.recv(1024))  # b'ping'


asyncio.run(main())
