"""Tool calls: the one rule for a call that has no arguments.

A function call without arguments is ``{}`` in every codec, decoded or
encoded, streamed or whole: no client has to parse an empty string, and no
upstream rejects one.  (A custom tool's input is free text and stays as it is.)
"""

from __future__ import annotations

#: The arguments of a function call that has none.
NO_ARGUMENTS = "{}"


def function_arguments(text: str) -> str:
    """A function call's arguments as JSON text: ``text``, or ``{}`` when it is blank."""
    return text if text.strip() else NO_ARGUMENTS
