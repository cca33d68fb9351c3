"""Reading an upstream's error body before its dialect reads the shape.

Every codec starts an error the same way: the body may be JSON, a JSON
array around one object (some proxies), plain text, HTML from a load
balancer, or nothing.  This module owns that first step and the message a
client sees when no structured message can be found, so the fallback
wording and its length do not differ by dialect.
"""

from __future__ import annotations

from typing import Any

import attrs

from polyrelay import ir
from polyrelay.dialects.hints import retry_hint_in_text
from polyrelay.jsonutil import loads

#: Characters of an unstructured body kept as the client's message: enough for
#: a proxy's sentence, short enough that an HTML error page does not flood a client.
MESSAGE_LIMIT = 1000


def no_message(status: int) -> str:
    """The message for an error that carries none."""
    return f"upstream returned HTTP {status}"


@attrs.frozen(slots=True)
class ErrorBody:
    """An upstream error body: its text, and the JSON it holds when it holds any."""

    status: int
    text: str
    #: The parsed JSON; a one-element array is unwrapped to its element.  None when not JSON.
    payload: Any

    @property
    def fallback(self) -> str:
        """The message to show when the payload names none: the text, cut, or the status."""
        return self.text[:MESSAGE_LIMIT] or no_message(self.status)

    def plain(self) -> ir.ErrorInfo:
        """The error as unstructured text: the fallback message and any retry hint it states."""
        return ir.ErrorInfo(status=self.status, message=self.fallback, retry_after=retry_hint_in_text(self.text))


def read_error_body(status: int, body: bytes | bytearray | memoryview | str) -> ErrorBody:
    """Decode ``body`` (never raises: a garbage body must not take the error path down)."""
    if isinstance(body, str):
        text = body.strip()
    elif isinstance(body, (bytes, bytearray, memoryview)):
        text = bytes(body).decode("utf-8", errors="replace").strip()
    else:  # a caller bug must still produce an error the client can read
        text = ""
    payload: Any = None
    if text:
        try:
            payload = loads(text)
        except ValueError:
            payload = None
    if isinstance(payload, list):
        if not payload:  # "[]" says nothing: the status is the better message
            return ErrorBody(status=status, text="", payload=None)
        payload = payload[0]
    return ErrorBody(status=status, text=text, payload=payload)
