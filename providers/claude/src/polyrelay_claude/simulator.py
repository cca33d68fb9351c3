"""A fake of the Anthropic Messages API for API keys and subscription tokens.

Sources: https://docs.anthropic.com/en/api/messages, .../en/api/messages-streaming,
.../en/api/errors and .../en/api/rate-limits; the subscription-token rules are what Claude Code
and CLIProxyAPI (router-for-me/CLIProxyAPI internal/runtime/executor/claude_executor*.go) send.

Subscription (OAuth) tokens come from the simulator's own OAuth server
(:class:`polyrelay.testing.oauth.OAuthServer`, set up with Claude's
client id, JSON bodies, ``code=true`` and ``state`` in the exchange); a
bearer request must carry the ``oauth-2025-04-20`` beta (else 401) and a
Claude Code identity block at the head of ``system`` (else the real 400
"only authorized for use with Claude Code").  :func:`unified_limit_reply`
scripts a 429 with the unified rate-limit headers.

``POST /v1/messages`` on loopback.  It validates what Anthropic validates
before it generates anything: the ``x-api-key`` header (401
``authentication_error``), ``anthropic-version`` (400), the body's required
fields, fields it does not know ("Extra inputs are not permitted"), roles,
empty content, tool ids and the pairing of every ``tool_use`` with a
``tool_result`` in the next message, and the thinking constraints (a budget
of at least 1024 tokens and below ``max_tokens``, temperature 1).  Errors
use Anthropic's envelope with a ``request_id``.

Answers follow the documented event sequence exactly: ``message_start``,
per block ``content_block_start`` / deltas / ``content_block_stop`` (a
``ping`` right after the first block start, as the docs' example shows),
``message_delta`` with the stop reason and cumulative usage, and
``message_stop``.  When the request enables thinking, a thinking block with
its ``signature_delta`` comes first.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import time
from collections.abc import Collection
from typing import Any

from aiohttp import web

from polyrelay import jsonutil
from polyrelay.sse import frame
from polyrelay.testing.oauth import OAuthServer
from polyrelay.testing.simulator import Recorded, Reply, Simulator

#: 2026-10-21 is what the anthropic Python SDK 2.x sends (captured); Claude Code sends 2023-06-01.
ANTHROPIC_VERSIONS = frozenset({"2023-06-01", "2023-01-01", "2026-10-21"})
#: Top-level Messages API fields; anything else is refused like the real API does.
REQUEST_FIELDS = frozenset({
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream", "temperature", "top_p",
    "top_k", "tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers", "context_management",
    "output_config", "output_format", "speed",
})
MIN_THINKING_BUDGET = 1024
_TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
INPUT_TOKENS = 12

_ids = itertools.count(1)


def _request_id() -> str:
    return f"req_011sim{next(_ids):015d}"


def error_body(kind: str, message: str) -> dict[str, Any]:
    """Anthropic's error envelope (``type`` is one of the documented error types)."""
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": _request_id()}


def error_reply(status: int, kind: str, message: str, **headers: str) -> Reply:
    """An error answer with Anthropic's ``request-id`` header."""
    body = error_body(kind, message)
    return Reply.json(body, status=status, headers={"request_id": body["request_id"], **headers})


def rate_limit_reply(retry_after: int = 30) -> Reply:
    """429 ``rate_limit_error`` with ``retry-after`` and the ``anthropic-ratelimit-*`` headers (rate-limits page)."""
    return error_reply(
        429, "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 requests per minute. "
        "For details, refer to: https://docs.claude.com/en/api/rate-limits.",
        retry_after=str(retry_after),
        anthropic_ratelimit_requests_limit="50",
        anthropic_ratelimit_requests_remaining="0",
        anthropic_ratelimit_requests_reset="2026-01-01T00:00:30Z",
    )


def overloaded_reply() -> Reply:
    """529 ``overloaded_error``: Anthropic is out of capacity (no retry hint)."""
    return error_reply(529, "overloaded_error", "Overloaded")


def event(name: str, payload: dict[str, Any]) -> bytes:
    """One SSE frame with Anthropic's ``event:`` line."""
    return frame(jsonutil.dumps({"type": name, **payload}), event=name)


def signature_for(thinking: str) -> str:
    """A stable, opaque-looking signature for a thinking text."""
    return base64.b64encode(b"sim-sig:" + hashlib.sha256(thinking.encode()).digest()).decode()


#: A tool call in an answer: ``(id, name, input)``.
ToolUse = tuple[str, str, dict[str, Any]]


def message_body(model: str, text: str, thinking: str | None = None, output_tokens: int = 9,
                 tool: ToolUse | None = None) -> dict[str, Any]:
    """A complete non-stream ``message`` object (a tool call ends it with ``tool_use``)."""
    content: list[dict[str, Any]] = []
    if thinking is not None:
        content.append({"type": "thinking", "thinking": thinking, "signature": signature_for(thinking)})
    content.append({"type": "text", "text": text})
    if tool is not None:
        content.append({"type": "tool_use", "id": tool[0], "name": tool[1], "input": tool[2]})
    return {
        "id": f"msg_01Sim{next(_ids):018d}", "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": INPUT_TOKENS, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                  "output_tokens": output_tokens, "service_tier": "standard"},
    }


def stream_frames(model: str, pieces: list[str], thinking: list[str] | None = None,
                  tool: ToolUse | None = None) -> list[bytes]:
    """The exact event sequence of a streamed answer: optional thinking, text, optional tool call.

    The tool's input streams as ``input_json_delta`` fragments, the first one
    empty, as Anthropic sends them.
    """
    start = message_body(model, "", output_tokens=1)
    start["content"], start["stop_reason"] = [], None
    frames = [event("message_start", {"message": start})]
    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    if thinking is not None:
        deltas: list[dict[str, Any]] = [{"type": "thinking_delta", "thinking": t} for t in thinking]
        deltas.append({"type": "signature_delta", "signature": signature_for("".join(thinking))})
        blocks.append(({"type": "thinking", "thinking": "", "signature": ""}, deltas))
    blocks.append(({"type": "text", "text": ""}, [{"type": "text_delta", "text": p} for p in pieces]))
    if tool is not None:
        arguments = jsonutil.dumps(tool[2]).decode()
        fragments = ["", arguments[: len(arguments) // 2], arguments[len(arguments) // 2:]]
        blocks.append(({"type": "tool_use", "id": tool[0], "name": tool[1], "input": {}},
                       [{"type": "input_json_delta", "partial_json": f} for f in fragments]))
    for index, (block, deltas) in enumerate(blocks):
        frames.append(event("content_block_start", {"index": index, "content_block": block}))
        if index == 0:
            frames.append(event("ping", {}))
        frames += [event("content_block_delta", {"index": index, "delta": d}) for d in deltas]
        frames.append(event("content_block_stop", {"index": index}))
    frames.append(event("message_delta", {
        "delta": {"stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None},
        "usage": {"input_tokens": INPUT_TOKENS, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                  "output_tokens": 9}}))
    frames.append(event("message_stop", {}))
    return frames


def tool_use_reply(model: str, name: str, arguments: dict[str, Any], stream: bool,
                   text: str = "Let me check.") -> Reply:
    """An answer that says ``text`` and calls tool ``name`` (stop reason ``tool_use``)."""
    tool = (f"toolu_01Sim{next(_ids):014d}", name, arguments)
    if stream:
        return Reply(chunks=stream_frames(model, [text], tool=tool), headers={"content-type": "text/event-stream"})
    return Reply.json(message_body(model, text, tool=tool))


def _content_problem(index: int, message: dict[str, Any], last: bool) -> str | None:
    content = message.get("content")
    if isinstance(content, str):
        empty = not content.strip()
    elif isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text" and not block.get("text"):
                return "messages: text content blocks must be non-empty"
        empty = not content
    else:
        return f"messages.{index}.content: Input should be a valid string or list"
    if empty and not (last and message.get("role") == "assistant"):
        return "messages: all messages must have non-empty content except for the optional final assistant message"
    return None


def _tool_problem(messages: list[dict[str, Any]]) -> str | None:
    """Tool ids well formed, and every ``tool_use`` answered by a ``tool_result`` in the very next message."""
    pending: list[str] = []  # tool_use ids of the previous assistant message
    for index, message in enumerate(messages):
        blocks = [b for b in message["content"] if isinstance(b, dict)] if isinstance(message["content"], list) else []
        results = [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]
        unexpected = [r for r in results if r not in pending]
        if message["role"] == "user" and unexpected:
            return (f"messages.{index}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{unexpected[0]}. Each `tool_result` block must have a corresponding `tool_use` block in the "
                    "previous message.")
        if missing := [p for p in pending if p not in results]:
            return (f"messages.{index - 1}: `tool_use` ids were found without `tool_result` blocks immediately "
                    f"after: {', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` "
                    "block in the next message.")
        pending = []
        for position, block in enumerate(blocks):
            if message["role"] == "assistant" and block.get("type") == "tool_use":
                if not _TOOL_ID.fullmatch(str(block.get("id", ""))):
                    return (f"messages.{index}.content.{position}.tool_use.id: String should match pattern "
                            f"'{_TOOL_ID.pattern}'")
                pending.append(block["id"])
    return None


def _thinking_problem(body: dict[str, Any]) -> str | None:
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or budget < MIN_THINKING_BUDGET:
        return f"thinking.enabled.budget_tokens: Input should be greater than or equal to {MIN_THINKING_BUDGET}"
    if budget >= body["max_tokens"]:
        return ("`max_tokens` must be greater than `thinking.budget_tokens`. "
                "Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking")
    if body.get("temperature", 1) != 1:
        return "`temperature` may only be set to 1 when thinking is enabled."
    return None


def body_problem(body: Any) -> str | None:
    """What Anthropic's request validation would say about ``body`` (None: it is valid)."""
    if not isinstance(body, dict):
        return "Input should be a valid dictionary or object to extract fields from"
    for name in body:
        if name not in REQUEST_FIELDS:
            return f"{name}: Extra inputs are not permitted"
    for name in ("model", "messages", "max_tokens"):
        if name not in body:
            return f"{name}: Field required"
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        return "max_tokens: Input should be greater than or equal to 1"
    messages = body["messages"]
    if not isinstance(messages, list):
        return "messages: Input should be a valid list"
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return f"messages.{index}.role: Input should be 'user' or 'assistant'"
        problem = _content_problem(index, message, index == len(messages) - 1)
        if problem:
            return problem
    if problem := _tool_problem(messages):
        return problem
    for index, tool in enumerate(body.get("tools") or []):
        custom = isinstance(tool, dict) and tool.get("type") in (None, "custom")
        if custom and (tool.get("input_schema") or {}).get("type") != "object":
            return f"tools.{index}.custom.input_schema.type: Field required"
    return _thinking_problem(body)


#: What Anthropic answers a subscription token whose request lacks the Claude Code identity (observed).
CLAUDE_CODE_ONLY = ("This credential is only authorized for use with Claude Code and cannot be used for other "
                    "API requests.")
OAUTH_BETA = "oauth-2025-04-20"
IDENTITY_TEXTS = frozenset({
    "You are Claude Code, Anthropic's official CLI for Claude.",
    "You are Claude Code, Anthropic's official CLI for Claude, running within the Claude Agent SDK.",
    "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
})
MID_CONVERSATION_SYSTEM_BETA = "mid-conversation-system-2026-04-07"


def claude_token_fields(email: str = "dev@example.com") -> Any:
    """The account and organization a Claude token answer carries (anthropic_auth.go in CLIProxyAPI)."""
    def fields(kind: str, grant: dict[str, Any]) -> dict[str, Any]:
        return {"scope": "user:profile user:inference", "account": {"uuid": "acc-uuid-1", "email_address": email},
                "organization": {"uuid": "org-uuid-1", "name": "Dev Org"}}
    return fields


def _identity_ok(system: Any) -> bool:
    blocks = [{"type": "text", "text": system}] if isinstance(system, str) else system
    for block in blocks if isinstance(blocks, list) else []:
        text = block.get("text") if isinstance(block, dict) else None
        if isinstance(text, str) and text.startswith("x-anthropic-billing-header:"):
            continue
        return isinstance(text, str) and text.strip() in IDENTITY_TEXTS
    return False


def unified_limit_reply(claim: str = "five_hour", reset_in: float = 3600.0, window: str = "5h",
                        message: str = "Number of requests has exceeded your 5-hour rate limit.") -> Reply:
    """429 with the unified subscription headers: ``window`` rejected, resetting in ``reset_in`` seconds."""
    reset = str(int(time.time() + reset_in))
    prefix = "anthropic-ratelimit-unified-"
    other = "7d" if window != "7d" else "5h"
    reply = error_reply(429, "rate_limit_error", message, retry_after=str(int(reset_in)))
    reply.headers.update({
        f"{prefix}status": "rejected", f"{prefix}{window}-status": "rejected", f"{prefix}{window}-reset": reset,
        f"{prefix}{other}-status": "allowed", f"{prefix}representative-claim": claim, f"{prefix}reset": reset,
    })
    return reply


class AnthropicSimulator(Simulator):
    """``POST /v1/messages`` and ``/v1/messages/count_tokens`` (the API base is the root URL),
    and Anthropic's OAuth side (``/oauth/authorize``, ``/v1/oauth/token``) for subscription tokens."""

    key_header = "x-api-key"

    def __init__(self, keys: Collection[str] | None = None, reply_text: str = "Hello from the Claude simulator.",
                 thinking_text: str = "The user wants a greeting.", email: str = "dev@example.com",
                 token_delay: float = 0.0) -> None:
        super().__init__(keys)
        self.reply_text = reply_text
        self.thinking_text = thinking_text
        self.oauth = OAuthServer(
            "9d1c250a-e61b-44d9-88ed-5944d1962f5e", style="json", authorize_path="/oauth/authorize",
            token_path="/v1/oauth/token", required_params={"code": "true"}, require_state_in_exchange=True,
            access_prefix="sk-ant-oat01-sim-", refresh_prefix="sk-ant-ort01-sim-", expires_in=28800,
            answer_fields=claude_token_fields(email), token_delay=token_delay)
        #: What ``count_tokens`` answers (distinct from any local estimate).
        self.counted_tokens = 4321

    @property
    def api_base(self) -> str:
        """What a ``claude-api-key`` entry's ``base-url`` is set to."""
        return self.base_url

    def routes(self) -> list[web.RouteDef]:
        """The Messages and count endpoints, and the OAuth endpoints."""
        return [web.post("/v1/messages", self.handle), web.post("/v1/messages/count_tokens", self.handle),
                *self.oauth.routes()]

    def _auth_problem(self, recorded: Recorded) -> Reply | None:
        bearer = recorded.headers.get("authorization", "")
        if bearer.startswith("Bearer "):
            if not self.oauth.valid(bearer[7:]):
                return error_reply(401, "authentication_error", "OAuth token has expired or is invalid.")
            betas = [b.strip() for b in recorded.headers.get("anthropic-beta", "").split(",")]
            if OAUTH_BETA not in betas:
                return error_reply(401, "authentication_error", "OAuth authentication is currently not supported.")
            return None
        refused = self.key_problem(recorded)
        if refused == "missing":
            return error_reply(401, "authentication_error", "x-api-key header is required")
        if refused == "unknown":
            return error_reply(401, "authentication_error", "invalid x-api-key")
        return None

    def check(self, recorded: Recorded) -> Reply | None:
        """Authentication, version header and body validation, in Anthropic's order and words."""
        problem = self._auth_problem(recorded)
        if problem is not None:
            return problem
        version = recorded.headers.get("anthropic-version")
        if not version:
            return error_reply(400, "invalid_request_error", "anthropic-version: header is required")
        if version not in ANTHROPIC_VERSIONS:
            return error_reply(400, "invalid_request_error", f"anthropic-version: invalid version {version!r}")
        try:
            body = recorded.json()
        except ValueError:
            return error_reply(400, "invalid_request_error", "The request body is not valid JSON.")
        if recorded.path.endswith("/count_tokens"):
            body = {"max_tokens": 1, **body} if isinstance(body, dict) else body
        if isinstance(body, dict) and MID_CONVERSATION_SYSTEM_BETA in recorded.headers.get("anthropic-beta", ""):
            body = {**body, "messages": [m for m in body.get("messages") or [] if m.get("role") != "system"]}
        problem_text = body_problem(body)
        if problem_text:
            return error_reply(400, "invalid_request_error", problem_text)
        if recorded.headers.get("authorization", "").startswith("Bearer ") and not _identity_ok(body.get("system")):
            return error_reply(400, "invalid_request_error", CLAUDE_CODE_ONLY)
        return None

    def default_reply(self, recorded: Recorded) -> Reply:
        """Answer with :attr:`reply_text` (and a thinking block when thinking is on)."""
        body = recorded.json()
        if recorded.path.endswith("/count_tokens"):
            return Reply.json({"input_tokens": self.counted_tokens})
        thinks = (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
        if body.get("stream"):
            words = self.reply_text.split(" ")
            pieces = [w if i == 0 else f" {w}" for i, w in enumerate(words)]
            thinking = [self.thinking_text[:10], self.thinking_text[10:]] if thinks else None
            return Reply(chunks=stream_frames(body["model"], pieces, thinking),
                         headers={"content-type": "text/event-stream", "request-id": _request_id()})
        return Reply.json(message_body(body["model"], self.reply_text, self.thinking_text if thinks else None))
