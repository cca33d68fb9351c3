"""The block bookkeeping every stream decoder and encoder shares.

A stream, in any dialect and either direction, is a preamble said once, then
content blocks that open, take deltas and close, then one terminal event.
:class:`Blocks` owns that bookkeeping so that each codec keeps only how its
frames look:

* **started**: :meth:`Blocks.start` is true exactly once, when the caller
  must say its preamble (``MessageStart``, ``message_start``, the role chunk,
  ``response.created``), whether a real start or the first content came first.
* **open blocks**: a block opens under a *key* (what the other side calls it)
  and gets an *index* (what this side calls it, counted from 0 in opening
  order).  A key opens once: after it closed, :meth:`Blocks.index` still knows
  it, so a late delta or a repeated start cannot open it again.
* **a delta for an unopened block opens it**: the codec asks
  :meth:`Blocks.index`; ``None`` means it opens the block the delta implies
  (:data:`BLOCK_FOR_DELTA`) and says its start frame before the delta.
* **the "{}" rule**: a function call opened with ``owes_arguments`` that got no
  argument bytes (:meth:`Blocks.fill`) closes with :data:`NO_ARGUMENTS` in its
  :class:`Closed`, and the codec sends them before its stop.
* **close all, in index order**, on finish, on a cut and before an in-stream
  error: :meth:`Blocks.close_all` and :meth:`Blocks.finish`.
* **terminal**: after :meth:`Blocks.finish` nothing may open, and every codec
  says nothing more (a decoder's ``finished``, :class:`Tracked`, is this).

Where the dialects differ, the difference is a parameter or stays with the
dialect, on purpose:

* *Index remapping.*  Anthropic (both ways) and Responses decoding number their
  blocks afresh (``renumber=True``, the default): an upstream index, or a
  Responses ``(output item, content part)`` pair, is a key, and the IR index is
  the count.  Encoders whose wire carries no block index of their own, or
  whose closing order is the IR's (Gemini, Responses), pass ``renumber=False``:
  the index *is* the IR index, so ``close_all`` closes in IR index order as
  they always did.  Responses' ``output_index`` is the count of blocks opened
  before (:attr:`Blocks.opened`); Chat's tool-call position is the index of a
  tracker that holds only the calls.
* *One current block.*  Gemini has no block stop on its wire, and Chat's
  text and reasoning are one stream the upstream switches between: a part of
  another kind ends the current block.  Which block is current is the
  dialect's own (one field); those blocks open with :meth:`Blocks.open_next`,
  the index being its own key, because an upstream key there (Chat's tool-call
  ``index``, reused by some servers for every parallel call) does not name one
  block.  Chat also closes that current text block before its calls.
* *Items of parts.*  A Responses ``output_item.done`` closes every content part
  of its item: ``close_all(where)`` takes a key filter.
* *Which calls owe "{}".*  Only the codec knows at open whether a block
  ``owes_arguments``: a custom tool's input is free text; Gemini sends a call
  whole (its decoder always has arguments, its encoder reads ``""`` as
  ``{}``); a Responses encoder applies ``calls.function_arguments`` to the
  whole text in its done event, and its decoder hands on what the upstream's
  done event says.  Chat (both ways) and the Anthropic decoder stream
  fragments and owe it; the Anthropic encoder's ``tool_use`` start already
  says ``"input": {}``.
* *An encoder's in-stream error.*  Decoders close what is open before a
  ``StreamError``; encoders end with their error frame as the stream stands
  (no stop frames after it), so they call :meth:`Blocks.finish` and say
  nothing of what it closed.

Cheap on purpose (the stream path is hot): slots, a few dicts and sets, no
allocation per delta; a :class:`Closed` per block closed.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from polyrelay.dialects.calls import NO_ARGUMENTS

#: The IR block a delta of each kind implies when its block never started.
BLOCK_FOR_DELTA = {"text": "text", "thinking": "thinking", "signature": "thinking", "arguments": "tool_call"}


class Closed:
    """A block that just closed: what its stop frame needs."""

    __slots__ = ("arguments", "index", "kind")

    def __init__(self, index: int, kind: str, arguments: str | None) -> None:
        self.index = index
        self.kind = kind
        #: :data:`NO_ARGUMENTS` when a call that owed arguments closed without any, else None.
        self.arguments = arguments

    def __repr__(self) -> str:
        return f"Closed({self.index!r}, {self.kind!r}, {self.arguments!r})"


class Blocks:
    """Start, open, delta, close and terminal bookkeeping of one stream (either direction)."""

    __slots__ = ("_filled", "_index", "_kinds", "_open", "_owing", "_renumber", "finished", "started")

    def __init__(self, *, renumber: bool = True) -> None:
        #: True once the preamble was said (see :meth:`start`).
        self.started = False
        #: True once the terminal event was said: nothing opens after it.
        self.finished = False
        self._renumber = renumber
        self._index: dict[Hashable, int] = {}  # key → index, every block ever opened
        self._kinds: dict[Hashable, str] = {}  # key → kind, every block ever opened
        self._open: dict[Hashable, int] = {}  # key → index, while open
        self._owing: set[int] = set()  # open calls that close with "{}" unless filled
        self._filled: set[int] = set()  # indices that received content (see fill)

    def start(self) -> bool:
        """True the first time only: the caller says its preamble now."""
        if self.started:
            return False
        self.started = True
        return True

    @property
    def opened(self) -> int:
        """How many blocks have opened so far (the next block's index when renumbering)."""
        return len(self._index)

    def index(self, key: Hashable) -> int | None:
        """The index of the block opened under ``key``, open or closed; None if it never opened."""
        return self._index.get(key)

    def kind(self, key: Hashable) -> str | None:
        """The kind ``key`` opened with, open or closed; None if it never opened."""
        return self._kinds.get(key)

    def is_open(self, key: Hashable) -> bool:
        """Whether the block under ``key`` is open now."""
        return key in self._open

    def open_kind(self, key: Hashable) -> str | None:
        """The kind of the block under ``key`` while it is open; None if it is not."""
        return self._kinds[key] if key in self._open else None

    def open(self, key: Hashable, kind: str, *, owes_arguments: bool = False) -> int:
        """Open a block under a new ``key``; return its index.

        ``owes_arguments``: a function call that closes with ``"{}"`` unless
        :meth:`fill` is called for it.  Opening after :meth:`finish`, or a key
        twice, is a codec bug and raises.
        """
        if self.finished:
            raise RuntimeError("a block cannot open after the stream's terminal event")
        if key in self._index:
            raise RuntimeError(f"block {key!r} opened twice")
        if self._renumber:
            index = len(self._index)
        elif isinstance(key, int):
            index = key
        else:
            raise TypeError("without renumbering a block's key is its int index")
        self._index[key] = index
        self._kinds[key] = kind
        self._open[key] = index
        if owes_arguments:
            self._owing.add(index)
        return index

    def open_next(self, kind: str, *, owes_arguments: bool = False) -> int:
        """Open a block that has no key of its own (its index is its key); return its index."""
        return self.open(len(self._index), kind, owes_arguments=owes_arguments)

    def fill(self, index: int) -> None:
        """Record that block ``index`` received content (for a call: argument bytes)."""
        self._filled.add(index)

    def filled(self, index: int) -> bool:
        """Whether block ``index`` received content (see :meth:`fill`)."""
        return index in self._filled

    def close(self, key: Hashable) -> Closed | None:
        """Close the block under ``key``; None if it is not open (never opened, or closed)."""
        index = self._open.pop(key, None)
        if index is None:
            return None
        arguments = None
        if index in self._owing:
            self._owing.discard(index)
            if index not in self._filled:
                arguments = NO_ARGUMENTS  # no client has to parse ""
        return Closed(index, self._kinds[key], arguments)

    def close_all(self, where: Callable[[Any], bool] | None = None) -> list[Closed]:
        """Close every open block (or those whose key ``where`` accepts), in index order."""
        keys = [key for key in self._open if where is None or where(key)]
        keys.sort(key=self._open.__getitem__)
        return [closed for closed in map(self.close, keys) if closed is not None]

    def finish(self) -> list[Closed]:
        """The terminal event: close what is open (in index order); nothing opens after this."""
        closed = self.close_all() if self._open else []
        self.finished = True
        return closed


class Tracked:
    """A stream decoder whose terminal state is its tracker's (the ``finished`` every decoder promises)."""

    __slots__ = ()
    _blocks: Blocks

    @property
    def finished(self) -> bool:
        """True once the stream's own terminal event arrived (normal end or error)."""
        return self._blocks.finished
