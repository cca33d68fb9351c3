"""The block tracker every stream codec uses: the rules a client of any dialect relies on."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyrelay.dialects.blocks import BLOCK_FOR_DELTA, Blocks, Closed
from polyrelay.dialects.calls import NO_ARGUMENTS


def closes(closed: list[Closed]) -> list[tuple[int, str, str | None]]:
    return [(c.index, c.kind, c.arguments) for c in closed]


def test_the_preamble_is_said_once() -> None:
    blocks = Blocks()
    assert blocks.start() is True
    assert blocks.start() is False
    assert blocks.started


def test_blocks_are_numbered_in_opening_order_whatever_their_keys() -> None:
    blocks = Blocks()
    assert blocks.open(7, "text") == 0
    assert blocks.open(("item", 2), "thinking") == 1
    assert blocks.open(3, "tool_call") == 2
    assert (blocks.index(7), blocks.index(("item", 2)), blocks.index(3)) == (0, 1, 2)
    assert blocks.opened == 3


def test_without_renumbering_the_index_is_the_key() -> None:
    blocks = Blocks(renumber=False)
    assert blocks.open(5, "text") == 5
    assert blocks.open(2, "text") == 2
    # Closed in IR index order, not opening order.
    assert [c.index for c in blocks.close_all()] == [2, 5]


def test_close_all_closes_in_index_order_and_only_what_is_open() -> None:
    blocks = Blocks()
    for key in ("a", "b", "c", "d"):
        blocks.open(key, "text")
    assert blocks.close("c") is not None
    assert closes(blocks.close_all()) == [(0, "text", None), (1, "text", None), (3, "text", None)]
    assert blocks.close_all() == []
    assert blocks.close("a") is None  # closing twice says nothing twice


def test_close_all_may_close_one_items_parts() -> None:
    blocks = Blocks()
    blocks.open((0, 0), "text")
    blocks.open((1, None), "tool_call")
    blocks.open((0, 1), "text")
    assert [c.index for c in blocks.close_all(lambda key: key[0] == 0)] == [0, 2]
    assert blocks.is_open((1, None))


def test_a_call_without_argument_bytes_closes_with_an_empty_object() -> None:
    blocks = Blocks()
    call = blocks.open("call", "tool_call", owes_arguments=True)
    closed = blocks.close("call")
    assert closed is not None
    assert (closed.index, closed.kind, closed.arguments) == (call, "tool_call", "{}")


def test_a_call_with_arguments_or_free_text_owes_nothing() -> None:
    blocks = Blocks()
    with_arguments = blocks.open("function", "tool_call", owes_arguments=True)
    blocks.open("custom", "tool_call")  # a custom tool's input is free text: "" stays ""
    blocks.fill(with_arguments)
    assert closes(blocks.close_all()) == [(0, "tool_call", None), (1, "tool_call", None)]


def test_the_empty_object_comes_once_even_when_closing_everything() -> None:
    blocks = Blocks()
    blocks.open("text", "text")
    blocks.open("call", "tool_call", owes_arguments=True)
    assert closes(blocks.finish()) == [(0, "text", None), (1, "tool_call", NO_ARGUMENTS)]
    assert blocks.close("call") is None


def test_finish_closes_what_is_open_and_nothing_opens_after_it() -> None:
    blocks = Blocks()
    blocks.open("a", "text")
    assert [c.index for c in blocks.finish()] == [0]
    assert blocks.finished
    with pytest.raises(RuntimeError):
        blocks.open("b", "text")
    with pytest.raises(RuntimeError):
        blocks.open_next("text")
    assert blocks.finish() == []


def test_a_closed_block_never_reopens() -> None:
    blocks = Blocks()
    blocks.open("a", "text")
    blocks.close("a")
    assert blocks.index("a") == 0  # a late delta finds it known, so it does not open again
    assert not blocks.is_open("a")
    assert blocks.open_kind("a") is None
    assert blocks.kind("a") == "text"
    with pytest.raises(RuntimeError):
        blocks.open("a", "text")


@pytest.mark.parametrize(("delta", "block"), [("text", "text"), ("thinking", "thinking"),
                                              ("signature", "thinking"), ("arguments", "tool_call")])
def test_a_delta_for_an_unopened_block_opens_the_block_it_implies(delta: str, block: str) -> None:
    blocks = Blocks()
    assert blocks.index("x") is None  # what every codec asks before a delta
    index = blocks.open("x", BLOCK_FOR_DELTA[delta])
    assert blocks.open_kind("x") == block
    assert blocks.index("x") == index == 0


def test_blocks_without_keys_of_their_own_count_on() -> None:
    blocks = Blocks()
    assert blocks.open_next("text") == 0
    assert blocks.open_next("tool_call") == 1
    assert blocks.open_kind(1) == "tool_call"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["open", "fill", "close", "close_all"]), st.integers(0, 5)), max_size=40))
def test_any_sequence_keeps_blocks_balanced(ops: list[tuple[str, int]]) -> None:
    """Whatever a codec does, each block closes once, in order when closed together, "{}" only if unfilled."""
    blocks = Blocks()
    opened: dict[int, int] = {}
    filled: set[int] = set()
    closed: list[int] = []
    for op, key in ops:
        if op == "open" and blocks.index(key) is None:
            opened[key] = blocks.open(key, "tool_call", owes_arguments=True)
        elif op == "fill" and key in opened:
            blocks.fill(opened[key])
            filled.add(opened[key])
        elif op == "close" and (done := blocks.close(key)) is not None:
            closed.append(done.index)
            assert done.arguments == (None if done.index in filled else NO_ARGUMENTS)
        elif op == "close_all":
            batch = [c.index for c in blocks.close_all()]
            assert batch == sorted(batch)
            closed.extend(batch)
    closed.extend(c.index for c in blocks.finish())
    assert sorted(closed) == sorted(opened.values())
    assert sorted(opened.values()) == list(range(len(opened)))
