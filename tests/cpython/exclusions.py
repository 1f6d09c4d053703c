"""CPython socket tests that the runner leaves out, or runs as known bugs.

Keys are test ids relative to the module (``Class.test_method``); in
``EXCLUSIONS`` also a whole class (``Class``). A test is left out only if it
cannot or should not pass through ``asocket.sync``: it checks an
implementation detail of the stdlib's socket class (the C type, private
methods, module-global lookups), or needs hardware or traffic beyond loopback.
Tests that only need a running kernel feature (CAN, RDS, TIPC, ALG, Bluetooth,
QIPCRTR, SCTP...) are not listed: they skip themselves where it is missing.

A test that fails because asocket deviates from the stdlib is a bug: it goes
in ``KNOWN_BUGS`` (still run, as an expected failure), never in ``EXCLUSIONS``.
Only a failure raised in the test method itself can be listed there: a
threaded test's client half (``_testFoo``) fails in a cleanup, which an
expected failure does not cover.
"""

from __future__ import annotations

EXCLUSIONS: dict[str, dict[str, str]] = {
    "test_socket": {
        # -- internals of the stdlib's implementation ------------------------------
        "GeneralModuleTests.test_SocketType_is_socketobject": (
            "asserts socket.SocketType is the C type _socket.socket"
        ),
        "GeneralModuleTests.test__sendfile_use_sendfile": (
            "calls the stdlib-private socket._sendfile_use_sendfile (no such method in asocket)"
        ),
        "SendfileUsingSendTest.testNonRegularFile": (
            "asserts the stdlib-private _sendfile_use_sendfile raises _GiveupOnSendfile"
        ),
        "SendfileUsingSendfileTest.testNonRegularFile": (
            "asserts the stdlib-private _sendfile_use_sendfile raises _GiveupOnSendfile"
        ),
        "NetworkConnectionNoServer.test_create_connection_timeout": (
            "mocks socket.socket to steer socket.create_connection, which in the stdlib looks"
            " the module global up at call time; asocket.sync.create_connection makes its own"
        ),
        # -- hardware / traffic beyond loopback ---------------------------------
        "ThreadedVSOCKSocketStreamTest": (
            "AF_VSOCK traffic goes to the hypervisor, not loopback (hangs in accept in a VM guest)"
        ),
    },
    "test_timeout": {
        "TCPTimeoutTestCase.testConnectTimeout": (
            "needs the internet: connects to pythontest.net's blackhole port"
        ),
        "TCPTimeoutTestCase.testRecvTimeout": "needs the internet: connects to www.python.org:80",
    },
}


# Tests that fail through asocket.sync because of an asocket bug not fixed yet.
# They still run, as expected failures: once the bug is fixed they pass, which
# fails the run until the entry is removed.
KNOWN_BUGS: dict[str, dict[str, str]] = {
    # None open. (SOCK_NONBLOCK in the type now means non-blocking mode, as the stdlib.)
    "test_socket": {},
}
