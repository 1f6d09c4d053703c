"""Run CPython's own socket tests through ``asocket.sync``, the way gevent runs them.

Usage::

    python tests/cpython/run_stdlib_suite.py [-v] [-k SUBSTRING] [--stdlib] MODULE...

``MODULE`` is ``test_socket`` or ``test_timeout`` (the copies installed with the
running Python). Before a test module is imported, the stdlib ``socket``
module's callables that ``asocket.sync`` defines itself (``socket``,
``SocketType``, ``socketpair``, ``fromfd``, ``create_connection``,
``create_server``, ``getdefaulttimeout``, ``setdefaulttimeout``) are replaced
in place by asocket's, so ``import socket; socket.socket(...)`` in the tests,
and in ``test.support.socket_helper``, makes an ``asocket.sync`` socket.
The patch lives only in this process: run it in a subprocess.

``exclusions.py`` lists the tests left out (``EXCLUSIONS``, each with its
reason) and the tests that fail through a known asocket bug (``KNOWN_BUGS``):
those run as expected failures, so the fix shows up as an unexpected success
and fails the run until the entry goes. An entry that matches no test is an
error, so neither list can go stale. A few tests are adapted, not left out
(see ``ADJUST`` below): their assertions stay as they are. ``--stdlib`` runs
the same selection, adapted the same way, without the patch: the baseline.

The ``network`` resource stays off: nothing leaves loopback. A watchdog
(``--timeout``) dumps every thread's stack and exits if the run hangs.

Prints one summary line per module (``SUMMARY module [face]: ran=...
passed=... skipped=... excluded=...``) and exits 1 on any failure, error or
unexpected success, 0 otherwise.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import os
import sys
import time
import types
import unittest
from collections.abc import Iterator
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
if ROOT not in sys.path:
    sys.path.insert(1, ROOT)

from exclusions import EXCLUSIONS, KNOWN_BUGS  # noqa: E402

MODULES = ("test_socket", "test_timeout")


# -- the patch ------------------------------------------------------------------


def patch_socket_module() -> list[str]:
    """Replace, in the stdlib ``socket`` module, every name ``asocket.sync`` defines
    itself; return the names replaced.

    asocket must survive this, as gevent's users patch the same way: an asocket
    module that looked ``socket.socket`` up at call time would recurse, so a
    probe makes a socket at once (a ``RecursionError`` here is an asocket bug)."""
    import socket

    import asocket.sync

    patched = []
    for name in asocket.sync.__all__:
        if not hasattr(socket, name):
            continue  # asocket's own extras (from_socket, SyncSocket)
        new = getattr(asocket.sync, name)
        if getattr(socket, name) is not new:
            setattr(socket, name, new)
            patched.append(name)
    a, b = socket.socketpair()
    with a, b, a.dup(), a.makefile("rb"):
        pass
    return sorted(patched)


# -- per-module adjustments -------------------------------------------------------


def _adjust_test_timeout(module: types.ModuleType) -> None:
    """test_timeout asks for the ``network`` resource module-wide and resolves
    ``www.python.org`` in every TCP ``setUp``; only two of its tests use the
    result (both excluded: they need the internet). Keep the loopback tests:
    require only a working socket, and resolve nothing (any host maps to
    loopback, so even a test that slipped through could not leave the machine)."""
    from test import support

    def set_up_module() -> None:
        support.requires_working_socket(module=True)

    def resolve_address(host: str, port: int) -> tuple[str, int]:
        return ("127.0.0.1", port)

    module.setUpModule = set_up_module  # type: ignore[attr-defined]
    module.resolve_address = resolve_address  # type: ignore[attr-defined]


class _NoFileno:
    """A file object seen without ``fileno()``: ``sendfile`` then takes its send() loop
    (the stdlib's own fallback rule), where it would otherwise use ``os.sendfile``."""

    def __init__(self, file: Any) -> None:
        self._file = file

    def __getattr__(self, name: str) -> Any:
        if name == "fileno":
            raise AttributeError(name)
        return getattr(self._file, name)


def _adjust_test_socket(module: types.ModuleType) -> None:
    """The sendfile tests reach the two paths of ``sendfile`` through the stdlib's
    private ``_sendfile_use_sendfile``/``_sendfile_use_send``, which asocket does not
    have. Point them at the public ``sendfile`` instead, on the same path:
    ``os.sendfile`` for the file as given, the send() loop for the file seen
    without ``fileno()``. Every assertion of the tests stays as it is."""

    def use_sendfile(self: Any, sock: Any) -> Any:
        return sock.sendfile

    def use_send(self: Any, sock: Any) -> Any:
        def send(file: Any, offset: int = 0, count: int | None = None) -> int:
            result: int = sock.sendfile(_NoFileno(file), offset, count)
            return result

        return send

    module.SendfileUsingSendTest.meth_from_sock = use_send  # type: ignore[attr-defined]
    module.SendfileUsingSendfileTest.meth_from_sock = use_sendfile  # type: ignore[attr-defined]


ADJUST = {"test_socket": _adjust_test_socket, "test_timeout": _adjust_test_timeout}


# -- selection --------------------------------------------------------------------


def _flatten(suite: unittest.TestSuite) -> Iterator[unittest.TestCase]:
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            yield from _flatten(test)
        else:
            yield test


def _short_id(module: str, test: unittest.TestCase) -> str:
    test_id = test.id()
    prefix = f"test.{module}."
    return test_id[len(prefix) :] if test_id.startswith(prefix) else test_id


def select(
    module: str, suite: unittest.TestSuite, pattern: str | None, known_bugs: bool
) -> tuple[unittest.TestSuite, list[str]]:
    """Drop the excluded tests and mark the known bugs as expected failures
    (if ``known_bugs``); return the rest and the excluded ids.

    Raises ``SystemExit`` if an entry matches no test (a stale entry)."""
    exclusions = EXCLUSIONS.get(module, {})
    bugs = KNOWN_BUGS.get(module, {}) if known_bugs else {}
    used: set[str] = set()
    kept = unittest.TestSuite()
    excluded = []
    for test in _flatten(suite):
        short = _short_id(module, test)
        cls = short.split(".", 1)[0]
        key = short if short in exclusions else cls if cls in exclusions else None
        if key is not None:
            used.add(key)
            excluded.append(short)
            continue
        if short in bugs:
            used.add(short)
            # An expected failure: it still runs, and passing (the bug fixed) fails the run.
            test.__unittest_expecting_failure__ = True  # type: ignore[attr-defined]
        if pattern is None or pattern in short:
            kept.addTest(test)
    stale = sorted((set(exclusions) | set(bugs)) - used)
    if stale:
        raise SystemExit(f"{module}: entries in exclusions.py match no test: {stale}")
    return kept, excluded


# -- running ----------------------------------------------------------------------


def run_module(module_name: str, args: argparse.Namespace) -> bool:
    module = importlib.import_module(f"test.{module_name}")
    adjust = ADJUST.get(module_name)
    if adjust is not None:
        adjust(module)
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    suite, excluded = select(module_name, suite, args.k, known_bugs=not args.stdlib)
    if args.v >= 1:
        for short in excluded:
            print(f"excluded: {short}", file=sys.stderr)
    runner = unittest.TextTestRunner(verbosity=1 + args.v, stream=sys.stderr)
    started = time.monotonic()
    result: Any = runner.run(suite)
    elapsed = time.monotonic() - started
    bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = (
        result.testsRun
        - len(result.failures)
        - len(result.errors)
        - len(result.skipped)
        - len(result.expectedFailures)
        - len(result.unexpectedSuccesses)
    )
    face = "stdlib" if args.stdlib else "asocket.sync"
    print(
        f"SUMMARY {module_name} [{face}]: ran={result.testsRun} passed={passed}"
        f" failures={len(result.failures)} errors={len(result.errors)}"
        f" skipped={len(result.skipped)} excluded={len(excluded)}"
        f" expected_failures={len(result.expectedFailures)}"
        f" unexpected_successes={len(result.unexpectedSuccesses)}"
        f" time={elapsed:.1f}s",
        flush=True,
    )
    return bad == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="+", choices=MODULES, metavar="MODULE")
    parser.add_argument("-v", action="count", default=0, help="verbose (repeatable)")
    parser.add_argument("-k", metavar="SUBSTRING", help="run only test ids containing this")
    parser.add_argument("--stdlib", action="store_true", help="no patch: the stdlib baseline")
    parser.add_argument(
        "--timeout", type=float, default=150.0, help="watchdog: dump stacks and exit after this"
    )
    args = parser.parse_args(argv)

    faulthandler.dump_traceback_later(args.timeout, exit=True)

    from test import support

    support.use_resources = []  # no 'network' (nor anything else): loopback only
    support.verbose = args.v >= 2

    if not args.stdlib:
        patched = patch_socket_module()
        print(f"patched socket.{{{', '.join(patched)}}} with asocket.sync's", flush=True)

    ok = True
    for module_name in args.modules:
        ok = run_module(module_name, args) and ok
    faulthandler.cancel_dump_traceback_later()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
