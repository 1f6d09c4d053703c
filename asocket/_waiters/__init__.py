"""The waiters: how each face (and each event loop) waits, one module per mechanism.

A waiter answers one question: "wait until this descriptor is readable or
writable, or the deadline passes" (``base.Waiter``). It knows nothing of
socket semantics; the engine (``asocket._engine``) owns those.

============  =====================================================================
module        mechanism
============  =====================================================================
``base``      the protocol every waiter keeps
``loop``      what the asyncio waiters share (the fan-out of several tasks per fd)
``epoll``     asyncio's selector loop on Linux: an edge-triggered epoll of asocket's
              own, which the loop watches
``readiness`` the other loops with ``add_reader`` (uvloop; the selector loop elsewhere)
``probe``     the read hint's look at a descriptor (``poll()`` without a timeout)
``thread``    loops without ``add_reader`` (proactor-style): readiness from a helper thread
``poll``      the sync face: block the calling thread in ``poll()``
``trio``      ``trio.run`` (and anyio's trio backend): trio's waits, fanned out
``current``   the waiter of the async library running now, and which one serves a loop
============  =====================================================================
"""
