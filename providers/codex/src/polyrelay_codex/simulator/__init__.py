"""Loopback fakes of the upstreams the codex provider talks to.

* :mod:`~polyrelay_codex.simulator.responses` — OpenAI's public Responses API, as an API key meets it;
* :mod:`~polyrelay_codex.simulator.chatgpt` — the ChatGPT backend, as a subscription account meets it.
"""

from polyrelay_codex.simulator.chatgpt import (
    Account,
    ChatGPTSimulator,
    failed_stream_reply,
    id_token,
    make_jwt,
    overloaded_reply,
    usage_limit_reply,
    usage_not_included_reply,
)
from polyrelay_codex.simulator.responses import (
    ResponsesSimulator,
    encrypted_content,
    function_call_reply,
    insufficient_quota_reply,
    rate_limit_reply,
)

__all__ = [
    "Account",
    "ChatGPTSimulator",
    "ResponsesSimulator",
    "encrypted_content",
    "failed_stream_reply",
    "function_call_reply",
    "id_token",
    "insufficient_quota_reply",
    "make_jwt",
    "overloaded_reply",
    "rate_limit_reply",
    "usage_limit_reply",
    "usage_not_included_reply",
]
