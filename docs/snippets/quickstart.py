import asyncio

import asocket


async def echo(sock: asocket.socket, address: object) -> None:
    while data := await sock.recv(65536):
        await sock.sendall(data)


async def main() -> None:
    async with await asocket.serve_tcp(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        sock = await asocket.create_connection(("127.0.0.1", port), timeout=5)
        async with sock:
            await sock.sendall(b"hello")
            print(await sock.recv(1024))  # b'hello'


asyncio.run(main())
