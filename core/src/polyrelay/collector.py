"""The cyclic garbage collector's policy for a gateway process.

Start-up (imports, plugin registration, config structuring) creates about
90,000 container objects, nearly all of which live as long as the process.
With CPython's default thresholds (700, 10, 10) the collector walked that
growing heap about 120 times during start-up, once in full, and the one
collection that must happen before the freeze walked all of it again:
together about 50 ms of a 350 ms cold start (docs/performance.md, "Fourth
batch").  Turning the collector off instead costs memory: start-up's
garbage (mostly the classes ``attrs`` replaces with slotted ones, 0.8 MB)
is then all alive at once, and the heap keeps the extra megabyte after it
is freed ("Fifth batch").  That garbage dies young, so start-up runs under
:data:`STARTUP_THRESHOLDS`: the youngest objects are collected every few
thousand allocations, which frees it, and what survives is not walked
again until the one full collection.

The ``polyrelay`` command sets them on its first line
(``polyrelay/__main__.py``; the package's names load on first use so that
this comes first).  ``serve`` keeps them until a moment after it starts
listening, then collects once, off the first request's path, and switches
to :data:`SERVING_THRESHOLDS`; every other command restores the previous
thresholds once its arguments are parsed.  :func:`polyrelay.server.load`
applies them around plugin loading and config structuring for callers
that are not the command (tests, embedding code).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

#: The collector's thresholds while serving (CPython's defaults are 700, 10, 10).
SERVING_THRESHOLDS = (50_000, 20, 10)
#: While starting: the youngest generation every 5,000 allocations, the older ones never.
STARTUP_THRESHOLDS = (5_000, 1_000_000, 1_000_000)
#: How long after its listener opens ``polyrelay serve`` runs its one start-up collection.
SETTLE_SECONDS = 1.0

# The thresholds start_up replaced (None: not starting up).
_before: tuple[int, int, int] | None = None


@contextlib.contextmanager
def starting() -> Iterator[None]:
    """Run the block under :data:`STARTUP_THRESHOLDS`, then restore the thresholds it had."""
    previous = gc.get_threshold()
    gc.set_threshold(*STARTUP_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def start_up() -> None:
    """Use :data:`STARTUP_THRESHOLDS` until :func:`tune_for_serving` or :func:`resume` replaces them."""
    global _before
    if _before is None:
        _before = gc.get_threshold()
    gc.set_threshold(*STARTUP_THRESHOLDS)


def resume() -> None:
    """Restore the thresholds :func:`start_up` replaced, for a command that does not serve."""
    global _before
    if _before is not None:
        gc.set_threshold(*_before)
        _before = None


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
    global _before
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_THRESHOLDS)
    gc.enable()
    _before = None
