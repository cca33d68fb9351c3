"""Tool names and call ids the ChatGPT backend accepts: at most 64 characters.

Clients with MCP servers send names like ``mcp__<server>__<tool>`` that can
run past the limit, and some clients mint long call ids.  Going up, every
such name or id is replaced by a short stand-in; coming back, the stand-ins
in the answer are replaced by the originals, so the client never sees them.
A stand-in keeps a readable head and ends in 16 hex digits of the
original's SHA-256, so two long names never collide.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

LIMIT = 64
_MCP = "mcp__"
_DIGEST = 16

#: Input item types that carry a ``call_id``, and those that also carry a tool ``name``.
CALL_ITEMS = frozenset({"function_call", "function_call_output", "custom_tool_call", "custom_tool_call_output"})
NAMED_ITEMS = frozenset({"function_call", "custom_tool_call"})


def stand_in(value: str) -> str:
    """A name or id of at most 64 characters that stands for ``value``.

    An MCP name keeps its prefix and its tool part (``mcp__…__read``) when
    that alone fits; otherwise head + ``_`` + 16 hex digits.
    """
    if len(value) <= LIMIT:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:_DIGEST]
    if value.startswith(_MCP) and "__" in value[len(_MCP):]:
        tool = value.rsplit("__", 1)[1]
        candidate = f"{_MCP}{tool}_{digest}"
        if len(candidate) <= LIMIT:
            return candidate
    return f"{value[:LIMIT - _DIGEST - 1]}_{digest}"


def _tools(tools: Any) -> Iterator[dict[str, Any]]:
    """Every tool with a ``name``, including those nested in a ``namespace`` tool."""
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, dict):
            if isinstance(tool.get("name"), str):
                yield tool
            yield from _tools(tool.get("tools"))


def shorten(body: dict[str, Any]) -> dict[str, str]:
    """Shorten over-long tool names and call ids in a Responses body, in place.

    Returns ``{stand-in: original}`` for every value replaced (empty when
    nothing was too long: the common case costs one pass and no copy).
    """
    restore: dict[str, str] = {}

    def short(value: Any) -> Any:
        if not isinstance(value, str) or len(value) <= LIMIT:
            return value
        replacement = stand_in(value)
        restore[replacement] = value
        return replacement

    for tool in _tools(body.get("tools")):
        tool["name"] = short(tool["name"])
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and "name" in choice:
        choice["name"] = short(choice["name"])
    items = body.get("input")
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("type") in CALL_ITEMS:
            if "call_id" in item:
                item["call_id"] = short(item["call_id"])
            if item.get("type") in NAMED_ITEMS and "name" in item:
                item["name"] = short(item["name"])
    return restore


def restore_item(item: Any, restore: dict[str, str]) -> bool:
    """Put the originals back into one output item (in place); whether anything changed."""
    if not isinstance(item, dict):
        return False
    changed = False
    for key in ("name", "call_id"):
        value = item.get(key)
        if isinstance(value, str) and value in restore:
            item[key] = restore[value]
            changed = True
    return changed


def restore_event(event: dict[str, Any], restore: dict[str, str]) -> bool:
    """Put the originals back into one Responses stream event (in place); whether anything changed."""
    changed = restore_item(event, restore)  # function_call_arguments.done carries ``name``
    changed |= restore_item(event.get("item"), restore)
    response = event.get("response")
    output = response.get("output") if isinstance(response, dict) else None
    for item in output if isinstance(output, list) else []:
        changed |= restore_item(item, restore)
    return changed

