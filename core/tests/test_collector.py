"""The collector policy: paused through start-up, one collection when serving settles."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from polyrelay import collector


@pytest.fixture(autouse=True)
def restore_collector() -> Iterator[None]:
    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    (gc.enable if enabled else gc.disable)()


class Node:
    """An object that can sit in a reference cycle."""

    other: Node | None = None


def cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_paused_restores_an_enabled_collector() -> None:
    gc.enable()
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_paused_leaves_a_held_collector_off() -> None:
    # Nested inside `polyrelay serve`'s hold, leaving the block must not restart collection.
    collector.hold()
    with collector.paused():
        pass
    assert not gc.isenabled()


def test_paused_restores_after_an_error() -> None:
    gc.enable()
    with pytest.raises(KeyError), collector.paused():
        raise KeyError("x")
    assert gc.isenabled()


def test_start_up_garbage_waits_for_the_settle_then_is_collected_not_frozen() -> None:
    collector.hold()
    gc.collect()  # whatever the suite left, so the thresholds below are ours
    garbage = cycle()
    for _ in range(5_000):  # far past the default gen-0 threshold
        cycle()
    assert garbage() is not None  # held: nothing collected
    collector.tune_for_serving()
    assert garbage() is None  # collected before the freeze, not kept forever
    assert gc.isenabled()
    assert gc.get_threshold() == collector.SERVING_THRESHOLDS
    assert gc.get_freeze_count() > 0
