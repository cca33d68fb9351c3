"""The collector policy: start-up thresholds, one full collection when serving settles."""

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
    collector.resume()  # ends a start-up a test began
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


def test_starting_sets_the_start_up_thresholds_and_restores_the_previous_ones() -> None:
    gc.set_threshold(700, 10, 10)
    with collector.starting():
        assert gc.get_threshold() == collector.STARTUP_THRESHOLDS
    assert gc.get_threshold() == (700, 10, 10)


def test_starting_restores_after_an_error() -> None:
    gc.set_threshold(900, 11, 12)
    with pytest.raises(KeyError), collector.starting():
        raise KeyError("x")
    assert gc.get_threshold() == (900, 11, 12)


def test_starting_inside_the_commands_start_up_keeps_the_start_up_thresholds() -> None:
    # load() runs inside `polyrelay serve`'s start-up: leaving its block must not end start-up.
    collector.start_up()
    with collector.starting():
        pass
    assert gc.get_threshold() == collector.STARTUP_THRESHOLDS


def test_resume_restores_what_start_up_replaced() -> None:
    gc.set_threshold(800, 9, 8)
    collector.start_up()
    collector.start_up()  # twice: still the thresholds from before the first
    collector.resume()
    assert gc.get_threshold() == (800, 9, 8)


def test_start_up_frees_young_garbage_and_leaves_survivors_for_the_settle() -> None:
    gc.enable()
    collector.start_up()
    gc.collect()  # whatever the suite left, so the counts below are ours
    a, b = Node(), Node()
    a.other, b.other = b, a
    survivor = weakref.ref(a)
    young = cycle()  # garbage at once, like the classes attrs replaces with slotted ones
    for _ in range(4_000):  # past the start-up gen-0 threshold
        cycle()
    assert young() is None  # the youngest generation was collected
    del a, b  # the survivor, now in an older generation, becomes garbage
    for _ in range(40_000):  # several more youngest-generation collections
        cycle()
    assert survivor() is not None  # older generations are not walked while starting
    collector.tune_for_serving()
    assert survivor() is None  # collected before the freeze, not kept forever
    assert gc.isenabled()
    assert gc.get_threshold() == collector.SERVING_THRESHOLDS
    assert gc.get_freeze_count() > 0
