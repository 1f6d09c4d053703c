"""The TLS examples run as a user runs them: subprocesses on 127.0.0.1.

tls_echo_server.py is driven by ``openssl s_client`` and by tls_echo_client.py;
https_get.py fetches a page from ``openssl s_server -www``. Certificates come
from trustme (the ``certs`` fixture); every wait is bounded, every process is
stopped by its PID when its test ends.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from _tls_helpers import (
    OPENSSL,
    Certs,
    OpenSSLServer,
    certs_fixture,  # noqa: F401  (fixture "certs")
    requires_tls,
)

requires_tls()

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WAIT = 20.0
needs_openssl = pytest.mark.skipif(shutil.which(OPENSSL) is None, reason="no openssl command")


def python(program: str, *args: str) -> list[str]:
    return [sys.executable, "-W", "error", str(EXAMPLES / program), *args]


def assert_clean(stderr: str) -> None:
    for bad in ("Traceback", "Warning", "Exception ignored"):
        assert bad not in stderr, stderr


@pytest.fixture
def server(certs: Certs, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """tls_echo_server.py on 127.0.0.1, port 0; stopped (SIGINT, then kill) at the end."""
    log = tmp_path / "server.err"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            python(
                "tls_echo_server.py",
                "--cert",
                certs.certfile,
                "--port",
                "0",
                "--handshake-timeout",
                "2",
            ),
            stdout=subprocess.PIPE,
            stderr=err,
        )
    try:
        assert proc.stdout is not None
        box: list[bytes] = []
        t = threading.Thread(target=lambda: box.append(proc.stdout.readline()))  # type: ignore[union-attr]
        t.start()
        t.join(WAIT)
        assert box, f"no 'listening on' line: {log.read_text()}"
        m = re.match(rb"listening on ([0-9.]+):(\d+)", box[0])
        assert m, box[0]
        yield proc, int(m.group(2)), log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout:
            proc.stdout.close()


@needs_openssl
@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_tls_echo_server_with_s_client(
    server: tuple[subprocess.Popen[bytes], int, Path], certs: Certs, version: str
) -> None:
    proc, port, log = server
    payload = b"hello over TLS\n" + b"x" * 100_000 + b"\nend\n"
    client = subprocess.Popen(
        [
            OPENSSL,
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-CAfile",
            certs.cafile,
            "-verify_return_error",
            "-servername",
            "localhost",
            "-quiet",
            version,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    got = bytearray()

    def read() -> None:
        assert client.stdout is not None
        while len(got) < len(payload) and (chunk := client.stdout.read1(65536)):
            got.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert client.stdin is not None
        client.stdin.write(payload)
        client.stdin.flush()
        reader.join(WAIT)
    finally:
        client.kill()  # s_client -quiet waits for the server's close: end it by PID
        client.communicate(timeout=WAIT)
        reader.join(WAIT)
    assert bytes(got) == payload
    proc.send_signal(signal.SIGINT)
    assert proc.wait(WAIT) == 0
    assert_clean(log.read_text())


def test_tls_echo_server_with_example_client(
    server: tuple[subprocess.Popen[bytes], int, Path], certs: Certs
) -> None:
    proc, port, log = server
    result = subprocess.run(
        python(
            "tls_echo_client.py",
            "--port",
            str(port),
            "--cafile",
            certs.cafile,
            "--server-hostname",
            "localhost",
            "hello",
            "wörld",
        ),
        capture_output=True,
        timeout=WAIT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello\nwörld\n".encode()
    assert b"TLSv1.3" in result.stderr
    # A client that speaks no TLS is logged in one line; the server goes on.
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as c:
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        try:
            c.recv(100)  # an alert, then the close
        except ConnectionResetError:
            pass
    again = subprocess.run(
        python("tls_echo_client.py", "--port", str(port), "--cafile", certs.cafile, "again"),
        capture_output=True,
        timeout=WAIT,
        check=False,
    )
    assert again.returncode == 0 and again.stdout == b"again\n", again.stderr
    proc.send_signal(signal.SIGINT)
    assert proc.wait(WAIT) == 0
    assert_clean(log.read_text())


def test_tls_echo_client_rejects_unknown_ca(
    server: tuple[subprocess.Popen[bytes], int, Path], certs: Certs
) -> None:
    _, port, _ = server
    result = subprocess.run(
        python("tls_echo_client.py", "--port", str(port), "hi"),  # system CAs only
        capture_output=True,
        timeout=WAIT,
        check=False,
    )
    assert result.returncode == 1
    assert b"certificate verify failed" in result.stderr
    assert_clean(result.stderr.decode())


@needs_openssl
def test_https_get_against_s_server_www(certs: Certs) -> None:
    with OpenSSLServer(certs, "-www") as srv:
        result = subprocess.run(
            python("https_get.py", "--port", str(srv.port), "--cafile", certs.cafile, "/"),
            capture_output=True,
            timeout=WAIT,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"HTTP/1.0 200 ok"), result.stdout[:200]
    assert b"Ciphers supported in s_server binary" in result.stdout
    assert_clean(result.stderr.decode())


@pytest.mark.parametrize("program", ["tls_echo_server.py", "tls_echo_client.py", "https_get.py"])
def test_help(program: str) -> None:
    result = subprocess.run(python(program, "--help"), capture_output=True, timeout=WAIT)
    assert result.returncode == 0 and result.stderr == b""
    assert result.stdout.startswith(b"usage:")
    assert b"--host" in result.stdout and b"--port" in result.stdout


# -- the command line: echo-server --tls-cert, echo-client --tls ------------------------


@pytest.mark.parametrize("face", [[], ["--sync"]], ids=["async", "sync"])
def test_cli_tls_echo(certs: Certs, tmp_path: Path, face: list[str]) -> None:
    """``python -m asocket echo-server --tls-cert`` answers ``echo-client --tls`` and
    ``openssl s_client``; a client that does not trust it fails with a one-line error."""
    cli = [sys.executable, "-W", "error", "-m", "asocket"]
    log = tmp_path / "server.err"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [*cli, "echo-server", "--tls-cert", certs.certfile, "--port", "0", *face],
            stdout=subprocess.PIPE,
            stderr=err,
        )
    try:
        assert proc.stdout is not None
        box: list[bytes] = []
        t = threading.Thread(target=lambda: box.append(proc.stdout.readline()))  # type: ignore[union-attr]
        t.start()
        t.join(WAIT)
        m = re.match(rb"listening on ([0-9.]+):(\d+)", box[0] if box else b"")
        assert m, (box, log.read_text())
        port = m.group(2).decode()
        ok = subprocess.run(
            [
                *cli,
                "echo-client",
                "--tls",
                "--cafile",
                certs.cafile,
                "--server-hostname",
                "localhost",
                "--port",
                port,
                *face,
                "hello",
                "tls",
            ],
            capture_output=True,
            timeout=WAIT,
            check=False,
        )
        assert (ok.returncode, ok.stdout) == (0, b"hello\ntls\n"), ok.stderr
        bad = subprocess.run(
            [*cli, "echo-client", "--tls", "--port", port, "hi"],
            capture_output=True,
            timeout=WAIT,
            check=False,
        )
        assert bad.returncode == 1
        assert b"certificate verify failed" in bad.stderr and b"Traceback" not in bad.stderr
        if shutil.which(OPENSSL):
            sc = subprocess.Popen(
                [
                    OPENSSL,
                    "s_client",
                    "-connect",
                    f"127.0.0.1:{port}",
                    "-CAfile",
                    certs.cafile,
                    "-verify_return_error",
                    "-quiet",
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            try:
                assert sc.stdin is not None and sc.stdout is not None
                sc.stdin.write(b"from openssl\n")
                sc.stdin.flush()
                got: list[bytes] = []
                r = threading.Thread(target=lambda: got.append(sc.stdout.readline()))  # type: ignore[union-attr]
                r.start()
                r.join(WAIT)
                assert got == [b"from openssl\n"]
            finally:
                sc.kill()
                sc.communicate(timeout=WAIT)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(WAIT) == 0
        assert_clean(log.read_text())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def test_cli_tls_option_checks() -> None:
    cli = [sys.executable, "-m", "asocket"]
    for args, text in [
        (["echo-client", "--port", "1", "--cafile", "x"], b"--cafile needs --tls"),
        (["echo-client", "--unix", "/tmp/x", "--tls"], b"TLS runs over TCP"),
        (["echo-server", "--udp", "--tls-cert", "x"], b"TLS runs over TCP"),
        (["echo-server", "--tls-key", "x"], b"--tls-key needs --tls-cert"),
    ]:
        result = subprocess.run([*cli, *args], capture_output=True, timeout=WAIT, check=False)
        assert result.returncode == 2 and text in result.stderr, (args, result.stderr)
