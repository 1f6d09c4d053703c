import asyncio

import asocket


async def main() -> None:
    listener = await asocket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    # "localhost" may resolve to ::1 and 127.0.0.1: the attempts race, the first to connect wins.
    async with await asocket.create_connection(("localhost", port), timeout=5) as sock:
        print(sock.getpeername()[0], sock.gettimeout())  # 127.0.0.1 5.0
    listener.close()
    try:
        await asocket.create_connection(("127.0.0.1", port), timeout=5, all_errors=True)
    except* ConnectionRefusedError as group:
        print(group.exceptions)  # (ConnectionRefusedError(111, 'Connection refused'),)


asyncio.run(main())
