"""The cyclic garbage collector's policy for a gateway process.

Start-up (imports, plugin registration, config structuring) creates about
90,000 container objects, and nothing it creates needs collecting before
serving begins.  With CPython's default gen-0 threshold of 700 the
collector walked that growing heap about 120 times during start-up, once
in full; and the one collection that must happen (so that start-up's
garbage is not frozen with it) walks all of it again.  Together about
50 ms of a 350 ms cold start (docs/performance.md, "Fourth batch").  So
start-up runs with the collector paused, and ``polyrelay serve`` collects
once, a moment after it starts listening rather than in front of the
first request.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

#: The collector's thresholds while serving (CPython's defaults are 700, 10, 10).
SERVING_THRESHOLDS = (50_000, 20, 10)
#: How long after its listener opens ``polyrelay serve`` runs its one start-up collection.
SETTLE_SECONDS = 1.0


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Run the block with the collector off, then restore whatever state it had."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def hold() -> None:
    """Turn the collector off until :func:`tune_for_serving` turns it on again."""
    gc.disable()


def tune_for_serving() -> None:
    """Collect start-up's garbage once, freeze what survives, and collect rarely from here on.

    A request allocates a few hundred container objects, so with the
    default gen-0 threshold of 700 the collector ran every few requests
    and, up to every hundred of those, walked every object start-up left
    behind (modules, plugins, config).  Freezing start-up's objects takes
    them out of every walk; a gen-0 threshold of 50,000 collects about once
    per few hundred requests.  The threshold alone took gateway CPU per 1 KB
    request from 795 to 720 us in an interleaved run (docs/performance.md,
    "Third look").  Cycles are still collected; they live somewhat longer.
    Requests in flight at this moment are frozen too: reference counting
    still frees them, and only a cycle among them outlives its request.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_THRESHOLDS)
    gc.enable()
