"""A property-based differential fuzzer: random programs on a stdlib pair and on both faces.

Hypothesis draws a program: a list of operations on the two ends of a connected
stream pair (AF_UNIX ``socketpair`` or TCP on loopback): ``send``/``sendall``/
``sendto``/``sendfile`` and ``recv``/``recv_into``/``recvfrom``/``recvmsg`` with
random sizes and random combinations of ``MSG_PEEK``, ``MSG_WAITALL``,
``MSG_DONTWAIT``, ``MSG_TRUNC`` and ``MSG_ERRQUEUE``; ``shutdown``, ``close``,
``settimeout(None / 0.0 / t)``; ``connect``/``connect_ex``/``bind``/``sendto``
with malformed addresses; ``getsockopt``/``setsockopt`` with odd arguments.

The program runs on the stdlib first, then on ``asocket.sync`` and on ``asocket``
on one loop of the matrix (a fresh loop per example, made by the conftest's
factory), and each operation's outcome must match the stdlib's: the return
value (and a buffer's contents), or the exception's type, errno and message;
then both ends are drained and the bytes left in the stream compared too.

Nothing may block forever. The stdlib pass decides, before each operation,
whether its blocking call would wait (``poll()`` and the bytes queued, read on
the stdlib's sockets); such an operation is skipped on every face. Timeout mode
waits at most ``T``; the bytes queued are capped so no send ever fills a buffer.
A face stops at its first difference (a sync face that went astray could block);
each awaited call of the async face is bounded.

Bounded for CI: ``EXAMPLES`` examples per family and loop kind in a run with a
fixed seed (``derandomize``) and as many with a random seed (printed in the
failure message; ``ASOCKET_FUZZ_SEED=n`` replays it). ``ASOCKET_FUZZ_EXAMPLES=n``
runs longer. Name resolution stays on loopback: a name other than ``localhost``
appears only in an address the stdlib refuses before any lookup.
"""

from __future__ import annotations

import asyncio
import fcntl
import io
import os
import random
import select
import socket
import struct
import tempfile
import termios
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import reduce
from operator import or_
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")

from _diff import Face, Raised, Returned, run_blocking  # noqa: E402
from conftest import LOOPS  # noqa: E402
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

import asocket  # noqa: E402
import asocket.sync  # noqa: E402

EXAMPLES = int(os.environ.get("ASOCKET_FUZZ_EXAMPLES", "25"))
SEED = os.environ.get("ASOCKET_FUZZ_SEED")
MAX_OPS = 24  # operations per program
T = 0.005  # the timeout mode's timeout: a receive on an empty socket waits this long
CAP = 32 * 1024  # bytes queued in one direction at most: no send ever fills a buffer
BOUND = 1.0  # each awaited call of the async face, and the watchdog of a blocking face

# -- known defects and documented differences ----------------------------------------
# Issue 13's defects, each excluded from the programs while it is open so the fuzzer
# finds new ones: put a defect's number here to keep the programs away from it.
#   1 MSG_PEEK|MSG_WAITALL in blocking mode      2 (cancellation: not fuzzed)
#   3 MSG_WAITALL and a reset after data          4 MSG_ERRQUEUE in blocking mode
#   5 malformed addresses with a host name        6 connect("" / "<broadcast>" / bytes)
#   7 recv(0) after close() (sync face)           8 get/setsockopt(..., None)
#   9 sendfile count beyond ssize_t
KNOWN_DEFECTS: frozenset[int] = frozenset()

PEEK = int(socket.MSG_PEEK)
WAITALL = int(socket.MSG_WAITALL)
DONTWAIT = int(socket.MSG_DONTWAIT)
TRUNC = int(socket.MSG_TRUNC)
ERRQUEUE = int(getattr(socket, "MSG_ERRQUEUE", 0))
FLAG_BITS = [PEEK, WAITALL, DONTWAIT, TRUNC] + ([ERRQUEUE] if ERRQUEUE else [])
POLLRDHUP = getattr(select, "POLLRDHUP", 0)
NAME = "nosuch.invalid"  # never resolved: only in addresses the stdlib refuses first

pytestmark = pytest.mark.skipif(not hasattr(select, "poll"), reason="needs poll()")


# -- programs ------------------------------------------------------------------------

ends = st.integers(0, 1)
sizes = st.sampled_from([0, 1, 2, 5, 64, 1000, 4096, -1]) | st.integers(0, 300)
flags = st.lists(st.sampled_from(FLAG_BITS), max_size=3).map(lambda bits: reduce(or_, bits, 0))
send_flags = st.sampled_from([0, 0, DONTWAIT, PEEK, WAITALL, TRUNC])


def _inet_addresses() -> st.SearchStrategy[Any]:
    host = st.sampled_from(
        ["127.0.0.1", "localhost", "", "<broadcast>", b"127.0.0.1", bytearray(b"127.0.0.1")]
    )
    port = st.sampled_from([0, 1, 70000, -1])
    well_formed = st.tuples(host, port)
    odd_host = st.tuples(st.sampled_from([1, None, 1.5, "127.0.0.1\0"]), st.just(1))
    # Refused by the stdlib's parser before any lookup: a wrong length, a port of the
    # wrong type, a NUL in the name (defect 5 when the name does not resolve).
    names = st.sampled_from(["127.0.0.1", "localhost"] + ([] if 5 in KNOWN_DEFECTS else [NAME]))
    malformed = st.one_of(
        st.tuples(names),
        st.tuples(names, st.just(1), st.just(0)),
        st.tuples(names, st.just(1), st.just(0), st.just(0)),
        st.tuples(names, st.sampled_from(["80", None, 1.0])),
        st.tuples(st.just("nosuch\0invalid"), st.just(80)),
    )
    other = st.sampled_from(["127.0.0.1", 80, None, b"x"])
    return st.one_of(well_formed, odd_host, malformed, other)


def _unix_addresses() -> st.SearchStrategy[Any]:
    return st.sampled_from(
        [
            123,
            None,
            ("a", 1),
            "/" + "x" * 200,
            b"/" + b"y" * 200,
            "",
            "/nonexistent-asocket-fuzz/s",
            b"/nonexistent-asocket-fuzz/s",
        ]
    )


def programs(family: str) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    """Lists of operations; each is a tuple ``(name, end, *arguments)``."""
    addresses = _inet_addresses() if family == "tcp" else _unix_addresses()
    op = st.one_of(
        st.tuples(st.just("send"), ends, sizes, send_flags),
        st.tuples(st.just("sendall"), ends, sizes, send_flags),
        st.tuples(st.just("recv"), ends, sizes, flags),
        st.tuples(st.just("recv"), ends, sizes, flags),
        st.tuples(
            st.just("recv_into"), ends, sizes, st.sampled_from(["0", "all", "half", "+1"]), flags
        ),
        st.tuples(st.just("recvfrom"), ends, sizes, flags),
        st.tuples(st.just("recvmsg"), ends, sizes, flags),
        st.tuples(st.just("shutdown"), ends, st.sampled_from([0, 1, 2, 7])),
        st.tuples(st.just("close"), ends),
        st.tuples(st.just("settimeout"), ends, st.sampled_from([None, 0.0, T])),
        st.tuples(st.just("settimeout"), ends, st.sampled_from([None, 0.0, T])),
        st.tuples(st.sampled_from(["connect", "connect_ex", "bind"]), ends, addresses),
        st.tuples(
            st.just("sendto"),
            ends,
            st.sampled_from([0, 3]),
            st.sampled_from(["none", 0, DONTWAIT, "0", None]),
            addresses,
        ),
        st.tuples(st.just("getsockopt"), ends, st.integers(0, 3)),
        st.tuples(st.just("setsockopt"), ends, st.integers(0, 3)),
        st.tuples(
            st.just("sendfile"),
            ends,
            st.sampled_from(["file", "bytesio"]),
            st.sampled_from([0, 5, 2000]),
            st.sampled_from([None, 1, 10, 5000, 2**63]),
        ),
    )
    return st.lists(op, min_size=1, max_size=MAX_OPS)


# -- the stdlib's state: would a blocking call wait? -----------------------------------


def _ioctl(sock: socket.socket, request: int) -> int:
    try:
        return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), request, b"\0" * 4))[0])
    except OSError:
        return 0


def _events(sock: socket.socket) -> int:
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN | POLLRDHUP)
    ready = poller.poll(0)
    return ready[0][1] if ready else 0


def _queued(src: socket.socket, dst: socket.socket) -> int:
    """Bytes ``src`` sent that ``dst`` has not read (``dst``'s receive queue, ``src``'s
    send queue)."""
    total = 0
    if dst.fileno() != -1:
        total += _ioctl(dst, termios.FIONREAD)
    if src.fileno() != -1:
        total += _ioctl(src, termios.TIOCOUTQ)
    return total


def _recv_waits(sock: socket.socket, family: str, want: int, flags: int) -> bool:
    """Whether the stdlib's blocking receive of ``want`` bytes with ``flags`` would wait."""
    if sock.fileno() == -1 or want < 0 or flags & DONTWAIT:
        return False
    if flags & ERRQUEUE and family == "tcp":
        return False  # an empty error queue: EAGAIN at once
    events = _events(sock)
    if events & (select.POLLERR | select.POLLHUP | POLLRDHUP):
        return False  # the end of the stream, or an error: answered at once
    avail = _ioctl(sock, termios.FIONREAD)
    if flags & WAITALL and (family == "tcp" or not flags & PEEK):
        return avail < max(want, 1)
    return avail == 0


def _want(op: tuple[Any, ...]) -> int:
    """How many bytes a receive operation asks for (-1: it is refused before any wait)."""
    name = op[0]
    if name == "recv_into":
        size, nbytes = max(op[2], 0), op[3]
        if nbytes == "+1":
            return -1  # ValueError: more than the buffer holds
        return {"0": size, "all": size, "half": size // 2}[nbytes] or size
    return int(op[2])


def _sent(op: tuple[Any, ...]) -> int:
    """How many bytes a send operation may queue at most."""
    name = op[0]
    if name in ("send", "sendall"):
        return max(op[2], 0)
    if name == "sendto":
        return int(op[2])
    if name == "sendfile":
        return 1000
    return 0


RECEIVES = {"recv", "recv_into", "recvfrom", "recvmsg"}
SENDS = {"send", "sendall", "sendto", "sendfile"}


def runnable(op: tuple[Any, ...], socks: list[socket.socket], family: str, loop_kind: str) -> bool:
    """Whether ``op`` runs: it cannot block forever on the stdlib, and it keeps away
    from the known defects (``KNOWN_DEFECTS``)."""
    name, end = op[0], op[1]
    sock, peer = socks[end], socks[1 - end]
    blocking = sock.fileno() != -1 and sock.gettimeout() is None
    if name == "sendfile" and sock.fileno() == -1:
        return False  # DOCUMENTED (differences.md): EBADF where the stdlib says ValueError
    if name in SENDS:
        return _queued(sock, peer) + _sent(op) <= CAP
    if name in RECEIVES:
        fl = op[-1]
        if blocking and _recv_waits(sock, family, _want(op), fl):
            return False
        if blocking and 1 in KNOWN_DEFECTS and fl & PEEK and fl & WAITALL:
            return False
        if blocking and 3 in KNOWN_DEFECTS and fl & WAITALL and _events(sock) & select.POLLERR:
            return False
        if blocking and 4 in KNOWN_DEFECTS and fl & ERRQUEUE:
            return False
        return not (7 in KNOWN_DEFECTS and sock.fileno() == -1 and _want(op) == 0)
    if name in ("connect", "connect_ex") and 6 in KNOWN_DEFECTS and loop_kind == "noreadiness":
        host = op[2][0] if isinstance(op[2], tuple) and op[2] else None
        return host not in ("", "<broadcast>") and not isinstance(host, bytes | bytearray)
    if name in ("getsockopt", "setsockopt") and 8 in KNOWN_DEFECTS:
        return op[2] not in (1, 2)
    return not (name == "sendfile" and 9 in KNOWN_DEFECTS and op[4] == 2**63)


# -- running a program on one face ------------------------------------------------------


def _data(i: int, size: int) -> bytes:
    return bytes((i * 7 + k) % 251 for k in range(max(size, 0)))


def _pair(F: Face, family: str) -> list[Any]:
    if family == "unix":
        raw = list(socket.socketpair())
    else:
        with socket.create_server(("127.0.0.1", 0)) as lst:
            cli = socket.create_connection(lst.getsockname())
            srv, _ = lst.accept()
        raw = [cli, srv]
        for s in raw:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if F.name == "stdlib":
        return raw
    return [F.mod.from_socket(s) for s in raw]


def _file(kind: str) -> Any:
    data = bytes(range(200)) * 5  # 1000 bytes
    if kind == "bytesio":
        return io.BytesIO(data)
    f = tempfile.TemporaryFile()  # noqa: SIM115 - the caller closes it
    f.write(data)
    f.seek(0)
    return f


SOCKOPTS: list[tuple[Any, ...]] = [
    (socket.SOL_SOCKET, socket.SO_TYPE),
    (socket.SOL_SOCKET, socket.SO_TYPE, None),
    (socket.SOL_SOCKET, socket.SO_RCVBUF, 4),
    (socket.SOL_SOCKET, socket.SO_ERROR),
]
SETSOCKOPTS: list[tuple[Any, ...]] = [
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1, None),
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE, None, 4),
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE, b"\1\0\0\0"),
]


async def _apply(F: Face, i: int, op: tuple[Any, ...], socks: list[Any]) -> Any:
    """Perform ``op`` on face ``F``: its comparable outcome."""
    name, end = op[0], op[1]
    s = socks[end]
    if name in ("send", "sendall"):
        return await F.outcome(getattr(s, name), _data(i, op[2]), op[3])
    if name == "recv":
        out = await F.outcome(s.recv, op[2], op[3])
        if op[3] & TRUNC and isinstance(out, Returned):
            return ("trunc", len(out.value))  # the kernel copies nothing: the bytes are noise
        return out
    if name == "recv_into":
        size, nbytes = max(op[2], 0), op[3]
        buf = bytearray(size)
        n = {"0": 0, "all": size, "half": size // 2, "+1": size + 1}[nbytes]
        out = await F.outcome(s.recv_into, buf, n, op[4])
        return out, bytes(buf) if not op[4] & TRUNC else len(buf)
    if name == "recvfrom":
        out = await F.outcome(s.recvfrom, op[2], op[3])
        if op[3] & TRUNC and isinstance(out, Returned):
            return ("trunc", len(out.value[0]), out.value[1])
        return out
    if name == "recvmsg":
        out = await F.outcome(s.recvmsg, op[2], 0, op[3])
        if op[3] & TRUNC and isinstance(out, Returned):
            return ("trunc", len(out.value[0]), out.value[1:])
        return out
    if name == "shutdown":
        return await F.outcome(s.shutdown, op[2])
    if name == "close":
        return await F.outcome(s.close)
    if name == "settimeout":
        return await F.outcome(s.settimeout, op[2])
    if name in ("connect", "connect_ex", "bind"):
        return await F.outcome(getattr(s, name), op[2])
    if name == "sendto":
        data, fl, address = _data(i, op[2]), op[3], op[4]
        args = (data, address) if fl == "none" else (data, fl, address)
        return await F.outcome(s.sendto, *args)
    if name == "getsockopt":
        return await F.outcome(s.getsockopt, *SOCKOPTS[op[2]])
    if name == "setsockopt":
        return await F.outcome(s.setsockopt, *SETSOCKOPTS[op[2]])
    if name == "sendfile":
        with _file(op[2]) as f:
            out = await F.outcome(s.sendfile, f, op[3], op[4])
            return out, f.tell()
    raise AssertionError(name)  # pragma: no cover


async def _drain(F: Face, s: Any) -> Any:
    """What is left to read on ``s`` (non-blocking reads) and how reading ends."""
    if s.fileno() == -1:
        return "closed"
    s.settimeout(0.0)
    chunks = []
    for _ in range(64):
        out = await F.outcome(s.recv, 65536)
        if not isinstance(out, Returned) or not out.value:
            return b"".join(chunks), out
        chunks.append(out.value)
    return b"".join(chunks), "more"  # pragma: no cover - CAP bounds what is queued


@contextmanager
def _watchdog(socks: list[Any]) -> Iterator[list[bool]]:
    """Shut the pair down if a blocking face is still running after ``BOUND`` seconds
    (a call that would never return): the run then fails as hung."""
    fired = [False]

    def fire() -> None:
        fired[0] = True
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    timer = threading.Timer(BOUND * 2, fire)
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()
        timer.join(BOUND)


async def run_program(
    F: Face,
    family: str,
    ops: list[tuple[Any, ...]],
    loop_kind: str,
    plan: list[bool] | None = None,
    expected: list[Any] | None = None,
) -> tuple[list[Any], list[bool]]:
    """Run ``ops`` on face ``F``: the outcomes (then what is left in the stream), and
    which operations ran. The stdlib's pass (``plan=None``) decides that; the faces
    follow its plan and stop at the first outcome that differs from ``expected``."""
    socks = _pair(F, family)
    raw = socks if F.name == "stdlib" else None
    outcomes: list[Any] = []
    ran: list[bool] = []
    try:
        with _watchdog(socks if not F.is_async else []) as fired:
            for i, op in enumerate(ops):
                if plan is None:
                    assert raw is not None
                    go = runnable(op, raw, family, loop_kind)
                else:
                    go = plan[i]
                ran.append(go)
                outcomes.append(await _apply(F, i, op, socks) if go else None)
                if expected is not None and outcomes[-1] != expected[i]:
                    break
            else:
                outcomes.append([await _drain(F, s) for s in socks])
        if fired[0]:
            outcomes.append(Raised(TimeoutError, None, f"{F.label}: blocked for {BOUND * 2} s"))
    finally:
        for s in socks:
            s.close()
    return outcomes, ran


def _report(label: str, ops: list[tuple[Any, ...]], ran: list[bool], exp: Any, got: Any) -> str:
    lines = [f"{label} differs from the stdlib:"]
    for i, op in enumerate(ops):
        if i < len(got) and i < len(exp) and got[i] == exp[i]:
            mark = "  " if ran[i] else "- "
            lines.append(f"  {mark}{op!r} -> {exp[i]!r}")
            continue
        lines.append(f"  ! {op!r}")
        lines.append(f"      stdlib: {exp[i] if i < len(exp) else '<none>'!r}")
        lines.append(f"      {label}: {got[i] if i < len(got) else '<none>'!r}")
        break
    else:
        lines.append("  ! what is left in the stream")
        lines.append(f"      stdlib: {exp[-1]!r}")
        lines.append(f"      {label}: {got[-1]!r}")
    return "\n".join(lines)


def fuzz_one(family: str, loop_kind: str, ops: list[tuple[Any, ...]]) -> None:
    """Run ``ops`` on the stdlib, the sync face and the async face on ``loop_kind``."""

    async def stdlib_pass(F: Face) -> Any:
        return await run_program(F, family, ops, loop_kind)

    expected, plan = run_blocking(stdlib_pass, Face("stdlib", socket))

    async def face_pass(F: Face) -> Any:
        return await run_program(F, family, ops, loop_kind, plan, expected)

    got, _ = run_blocking(face_pass, Face("sync", asocket.sync))
    assert got == expected, _report("sync", ops, plan, expected, got)

    face = Face("async", asocket, loop_kind, bound=BOUND)
    loop = LOOPS[loop_kind]()
    try:
        got, _ = loop.run_until_complete(asyncio.wait_for(face_pass(face), 60))
    finally:
        loop.close()
    assert got == expected, _report(face.label, ops, plan, expected, got)


FAMILIES = ["unix", "tcp"]
COMMON = {
    "deadline": None,
    "database": None,
    "suppress_health_check": list(HealthCheck),
    "print_blob": True,
    "max_examples": EXAMPLES,
}


@pytest.mark.parametrize("loop_kind", list(LOOPS))
@pytest.mark.parametrize("family", FAMILIES)
@settings(derandomize=True, **COMMON)
@given(data=st.data())
def test_fuzz_fixed_seed(family: str, loop_kind: str, data: Any) -> None:
    fuzz_one(family, loop_kind, data.draw(programs(family), label="ops"))


# The random run's seed: drawn now, or ASOCKET_FUZZ_SEED to replay a failure.
RUN_SEED = int(SEED) if SEED else random.SystemRandom().randrange(2**32)


@pytest.mark.parametrize("loop_kind", list(LOOPS))
@pytest.mark.parametrize("family", FAMILIES)
@hypothesis.seed(RUN_SEED)
@settings(derandomize=False, **COMMON)
@given(data=st.data())
def test_fuzz_random_seed(family: str, loop_kind: str, data: Any) -> None:
    try:
        fuzz_one(family, loop_kind, data.draw(programs(family), label="ops"))
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\n(random seed: ASOCKET_FUZZ_SEED={RUN_SEED} replays it)"
        ) from None


def test_known_defects_switch_names_issue_13_defects() -> None:
    assert set(KNOWN_DEFECTS) <= set(range(1, 10))
