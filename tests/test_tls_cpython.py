"""CPython's own ``test.test_ssl`` run through ``asocket.sync``'s TLS sockets.

Run as a script (a subprocess: the patch must not reach the test process),
this module points ``ssl.SSLContext.sslsocket_class`` at an adapter whose
``_create`` returns ``asocket.sync.wrap_socket(...)``: every
``context.wrap_socket(...)`` in test_ssl (its threaded echo servers included)
then makes an ``asocket.sync.SSLSocket``. Sockets get a 20 s default timeout,
so a failure cannot hang the run. The tests left out, each with its reason,
are in ``EXCLUDED``; every other test must pass (or be skipped as the stdlib
run skips it). Prints ``SUMMARY ran=... passed=... skipped=... excluded=...``.

    python tests/test_tls_cpython.py [--stdlib]   # --stdlib: the same, unpatched
"""

from __future__ import annotations

import faulthandler
import os
import socket
import ssl
import subprocess
import sys
import unittest
from typing import Any

EXCLUDED = {
    # By design: asocket.sync.SSLSocket is not a subclass of ssl.SSLSocket.
    "test.test_ssl.ThreadedTests.test_server_accept": "isinstance(sock, ssl.SSLSocket)",
    # The ResourceWarning of an unclosed TLS socket names the inner ssl.SSLSocket
    # (which the GC reaches first), not asocket's object.
    "test.test_ssl.BasicSocketTests.test_dealloc_warn": "warning names the inner SSLSocket",
    "test.test_ssl.BasicSocketTests.test_refcycle": "warning names the inner SSLSocket",
    # The adapter (not asocket) adopts the stdlib socket before wrapping: a refused
    # wrap leaves it detached, and the test wraps the same socket twice.
    "test.test_ssl.BasicSocketTests.test_unsupported_dtls": "adapter detaches the socket",
    # 3.13: a ResourceWarning in the test's server thread after the failed handshake
    # with a wrong host name; it comes with the adapter adopting the server's socket
    # (not reproduced through asocket's own API; not investigated further).
    "test.test_ssl.ThreadedTests.test_check_hostname_idn": "adapter: ResourceWarning (3.13)",
}


class _Adapter:
    """``SSLContext.sslsocket_class`` replacement: asocket's sync TLS socket."""

    @classmethod
    def _create(
        cls,
        sock: Any,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: Any = None,
        context: Any = None,
        session: Any = None,
    ) -> Any:
        import asocket.sync

        if not isinstance(sock, asocket.sync.socket):
            sock = asocket.sync.from_socket(sock)
        return asocket.sync.wrap_socket(
            sock,
            context,
            server_side=server_side,
            server_hostname=server_hostname,
            do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            session=session,
        )


def _tests(suite: unittest.TestSuite) -> list[unittest.TestCase]:
    out: list[unittest.TestCase] = []
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            out += _tests(item)
        else:
            out.append(item)
    return out


def main() -> int:
    patched = "--stdlib" not in sys.argv
    socket.setdefaulttimeout(20)
    if patched:
        ssl.SSLContext.sslsocket_class = _Adapter  # type: ignore[assignment]
    faulthandler.dump_traceback_later(240, exit=True)
    from test import test_ssl

    tests = _tests(unittest.defaultTestLoader.loadTestsFromModule(test_ssl))
    kept = unittest.TestSuite(t for t in tests if t.id() not in EXCLUDED)
    excluded = len(tests) - kept.countTestCases()
    with open(os.devnull, "w") as devnull:
        result = unittest.TextTestRunner(stream=devnull, verbosity=0).run(kept)
    for test, trace in result.failures + result.errors:
        print(f"FAILED {test.id()}\n{trace}")
    bad = len(result.failures) + len(result.errors)
    print(
        f"SUMMARY test_ssl [{'asocket.sync' if patched else 'stdlib'}]: ran={result.testsRun} "
        f"passed={result.testsRun - bad - len(result.skipped)} skipped={len(result.skipped)} "
        f"failed={bad} excluded={excluded}"
    )
    return 1 if bad else 0


if __name__ != "__main__":  # under pytest (the script itself runs without it)
    import pytest

    @pytest.mark.timeout(300)
    def test_cpython_test_ssl_through_the_sync_face() -> None:
        pytest.importorskip("test.test_ssl")
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__)],
            capture_output=True,
            text=True,
            timeout=280,
            check=False,
        )
        print(proc.stdout[-5000:])
        assert proc.returncode == 0 and "SUMMARY" in proc.stdout, (
            proc.stdout[-20000:] + proc.stderr[-5000:]
        )


if __name__ == "__main__":
    sys.exit(main())
