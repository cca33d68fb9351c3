"""Loopback fakes of Google's Gemini upstreams, for tests.

* :class:`GeminiSimulator` — the Gemini API as an AI Studio key holder meets
  it (:mod:`.aistudio`);
* :class:`CodeAssistSimulator` — Code Assist and Google's OAuth endpoints, as
  a Gemini CLI account meets them (:mod:`.codeassist`, :mod:`.google`,
  :mod:`.rules`).
"""

from polyrelay_gemini.simulator.aistudio import (
    REFUSED_SCHEMA_KEYWORDS,
    GeminiSimulator,
    answer_chunks,
    function_call_reply,
    invalid_argument,
    overloaded_reply,
    rate_limit_reply,
    request_problem,
    response_chunk,
    schema_problem,
    sse_frames,
    status_body,
    status_reply,
    thought_signature,
    usage,
)
from polyrelay_gemini.simulator.codeassist import LIMITS, CodeAssistSimulator, limit_reply, wrapped
from polyrelay_gemini.simulator.google import GoogleAccount, GoogleAccounts

__all__ = [
    "LIMITS",
    "REFUSED_SCHEMA_KEYWORDS",
    "CodeAssistSimulator",
    "GeminiSimulator",
    "GoogleAccount",
    "GoogleAccounts",
    "answer_chunks",
    "function_call_reply",
    "invalid_argument",
    "limit_reply",
    "overloaded_reply",
    "rate_limit_reply",
    "request_problem",
    "response_chunk",
    "schema_problem",
    "sse_frames",
    "status_body",
    "status_reply",
    "thought_signature",
    "usage",
    "wrapped",
]
