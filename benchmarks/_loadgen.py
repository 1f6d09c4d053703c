"""The load generator's Python fallback, used by servers.py when no C compiler works.

    python benchmarks/_loadgen.py client PORT CONNS SIZE WARMUP DURATION MODE

Same command line and JSON output as ``_native.c client``: CONNS connections to
127.0.0.1:PORT; mode ``echo``: each sends SIZE bytes, waits for the SIZE bytes
back, and sends again; mode ``sink``: only receives, counting bytes. Requests
(bytes) of the first WARMUP seconds are not counted, those of the next
DURATION seconds are.

One Python process drives the load: against the faster servers it is the
bottleneck (servers.py prints a note when it is used, and the load
generator's CPU share in every row).
"""

from __future__ import annotations

import json
import selectors
import socket
import sys
import time


def _cpu() -> float:
    return time.process_time()  # user + system CPU of this process


def client(
    port: int, nconns: int, size: int, warmup: float, duration: float, mode: str
) -> dict[str, float]:
    """Drive the server at 127.0.0.1:``port``; return the counts (the JSON object)."""
    sink = mode == "sink"
    request = b"x" * max(size, 1)
    sel = selectors.DefaultSelector()
    conns: list[socket.socket] = []
    received: dict[int, int] = {}
    for _ in range(nconns):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        conns.append(s)
        received[s.fileno()] = 0
        sel.register(s, selectors.EVENT_READ, s)
    start = time.monotonic()
    t0, t1 = start + warmup, start + warmup + duration
    cpu_start = _cpu()
    cpu0 = 0.0
    counted = total = bytes_counted = bytes_total = errors = 0
    in_window = False
    alive = nconns
    if not sink:
        for s in conns:
            s.sendall(request)  # SIZE bytes fit in an empty send buffer
    while alive:
        t = time.monotonic()
        if not in_window and t >= t0:
            in_window, cpu0 = True, _cpu()
        if t >= t1:
            break
        for key, _ in sel.select(0.01):
            s = key.data  # the socket (registered as its data)
            try:
                data = s.recv(262144)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                errors += 1
                alive -= 1
                continue
            bytes_total += len(data)
            if in_window:
                bytes_counted += len(data)
            if sink:
                continue
            fd = s.fileno()
            received[fd] += len(data)
            while received[fd] >= size:
                received[fd] -= size
                total += 1
                if in_window:
                    counted += 1
                s.setblocking(True)
                s.sendall(request)
                s.setblocking(False)
    end = time.monotonic()
    cpu1 = _cpu()
    window = max(0.0, min(end, t1) - t0) if in_window else 0.0
    sel.close()
    for s in conns:
        s.close()
    return {
        "requests": counted,
        "total_requests": total,
        "bytes": bytes_counted,
        "total_bytes": bytes_total,
        "seconds": window,
        "elapsed": end - start,
        "cpu_window": cpu1 - cpu0 if in_window else 0.0,
        "cpu_total": cpu1 - cpu_start,
        "errors": errors,
    }


def main(argv: list[str]) -> int:
    """``client PORT CONNS SIZE WARMUP DURATION MODE``: print the counts as one JSON line."""
    if len(argv) != 7 or argv[0] != "client" or argv[6] not in ("echo", "sink"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    port, nconns, size = int(argv[1]), int(argv[2]), int(argv[3])
    warmup, duration = float(argv[4]), float(argv[5])
    print(json.dumps(client(port, nconns, size, warmup, duration, argv[6])), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
