"""A fake of DashScope's OpenAI-compatible mode and of the Coding Plan's base, as a key holder meets them.

Sources: https://www.alibabacloud.com/help/en/model-studio/compatibility-of-openai-with-dashscope,
https://www.alibabacloud.com/help/en/model-studio/deep-thinking and
https://www.alibabacloud.com/help/en/model-studio/error-code.

``POST /compatible-mode/v1/chat/completions`` on loopback.  Like DashScope
it checks the bearer key (401 ``invalid_api_key``), the model (404
``model_not_found``), a non-empty ``messages`` list with known roles,
every assistant ``tool_calls`` answered by ``tool`` messages, and its
thinking rules: ``enable_thinking`` must be false on a non-stream call,
and ``reasoning_effort`` may not come with ``thinking_budget`` (400
``invalid_parameter_error``).  Errors carry DashScope's top-level
``request_id``.

Streams are chat chunks: with ``enable_thinking`` the ``reasoning_content``
deltas come before the ``content`` ones, then the finishing chunk, the usage
chunk with ``choices: []`` when ``stream_options.include_usage`` asks for it,
and ``data: [DONE]``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection
from typing import Any

from aiohttp import web

from polyrelay import jsonutil
from polyrelay.testing.oauth import OAuthServer
from polyrelay.testing.simulator import Recorded, Reply, Simulator

ROLES = frozenset({"system", "user", "assistant", "tool"})
PROMPT_TOKENS = 10
REASONING_TOKENS = 7


def error_body(message: str, type_: str, code: str | None) -> dict[str, Any]:
    """DashScope's compatible-mode error: OpenAI's shape plus ``request_id``."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code},
            "request_id": str(uuid.uuid4())}


def error_reply(status: int, message: str, type_: str, code: str | None, **headers: str) -> Reply:
    """An error answer."""
    return Reply.json(error_body(message, type_, code), status=status, headers=headers)


def invalid_parameter(message: str) -> Reply:
    """400 ``invalid_parameter_error``."""
    return error_reply(400, message, "invalid_request_error", "invalid_parameter_error")


def rate_limit_reply(retry_after: int | None = 20) -> Reply:
    """429 ``limit_requests`` (requests per minute exceeded), with ``Retry-After`` when given."""
    headers = {"retry_after": str(retry_after)} if retry_after is not None else {}
    return error_reply(429, "Requests rate limit exceeded, please try again later.", "limit_requests",
                       "limit_requests", **headers)


def quota_reply(status: int = 429) -> Reply:
    """``insufficient_quota``: the account is out of credit (429, or 403 as Qwen also sends it)."""
    return error_reply(status, "You exceeded your current quota, please check your plan and billing details.",
                       "insufficient_quota", "insufficient_quota")


def allocation_quota_reply(**headers: str) -> Reply:
    """The Coding Plan's spent window: 429 ``Throttling.AllocationQuota``."""
    return error_reply(429, "Allocated quota exceeded, please increase your quota limit.",
                       "Throttling.AllocationQuota", "Throttling.AllocationQuota", **headers)


def rate_quota_reply(**headers: str) -> Reply:
    """The Coding Plan's request-rate limit: 429 ``Throttling.RateQuota``."""
    return error_reply(429, "Requests rate limit exceeded, please try again later.", "Throttling.RateQuota",
                       "Throttling.RateQuota", **headers)


def expired_reply() -> Reply:
    """401 for a general key on the plan base, or a plan whose subscription ended."""
    return error_reply(401, "invalid access token or token expired", "invalid_request_error", "invalid_api_key")


def completion(model: str, text: str) -> dict[str, Any]:
    """A non-stream ``chat.completion``."""
    words = len(text.split())
    return {
        "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop", "index": 0,
                     "logprobs": None}],
        "object": "chat.completion",
        "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": words, "total_tokens": PROMPT_TOKENS + words,
                  "prompt_tokens_details": {"cached_tokens": 0}},
        "created": int(time.time()), "system_fingerprint": None, "model": model, "id": f"chatcmpl-{uuid.uuid4()}",
    }


def chunk_frames(model: str, pieces: list[str], reasoning: list[str], include_usage: bool,
                 tool: tuple[str, str, str] | None = None) -> list[bytes]:
    """SSE frames of a DashScope stream: reasoning, content, an optional tool call, finish, usage, [DONE].

    ``tool`` is ``(call id, name, arguments JSON)``: its first delta names
    the call, the arguments follow in fragments carrying only ``index``.
    """
    cid, created = f"chatcmpl-{uuid.uuid4()}", int(time.time())

    def frame(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        body = {"choices": choices, "object": "chat.completion.chunk", "usage": usage, "created": created,
                "system_fingerprint": None, "model": model, "id": cid}
        if usage is None and not include_usage:
            del body["usage"]
        return b"data: " + jsonutil.dumps(body) + b"\n\n"

    def delta(fields: dict[str, Any], finish: str | None = None) -> bytes:
        return frame([{"delta": fields, "finish_reason": finish, "index": 0, "logprobs": None}])

    first = {"content": None, "role": "assistant", "reasoning_content": ""} if reasoning else \
        {"content": "", "role": "assistant", "reasoning_content": None}
    frames = [delta(first)]
    frames += [delta({"content": None, "reasoning_content": r}) for r in reasoning]
    frames += [delta({"content": p, "reasoning_content": None}) for p in pieces]
    if tool is not None:
        call_id, name, arguments = tool
        frames.append(delta({"content": None, "tool_calls": [
            {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}]}))
        half = len(arguments) // 2
        frames += [delta({"content": None, "tool_calls": [{"index": 0, "function": {"arguments": part}}]})
                   for part in (arguments[:half], arguments[half:])]
    frames.append(delta({"content": "", "reasoning_content": None}, "tool_calls" if tool else "stop"))
    if include_usage:
        words = len("".join(pieces).split())
        thoughts = REASONING_TOKENS if reasoning else 0
        usage: dict[str, Any] = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": words + thoughts,
                                 "total_tokens": PROMPT_TOKENS + words + thoughts,
                                 "prompt_tokens_details": {"cached_tokens": 0}}
        if reasoning:
            usage["completion_tokens_details"] = {"reasoning_tokens": thoughts}
        frames.append(frame([], usage))
    frames.append(b"data: [DONE]\n\n")
    return frames


def tool_call_reply(model: str, name: str, arguments: dict[str, Any], stream: bool) -> Reply:
    """An answer calling function ``name`` (finish reason ``tool_calls``)."""
    call_id, text = f"call_{uuid.uuid4().hex[:24]}", jsonutil.dumps(arguments).decode()
    if stream:
        return Reply.sse(chunk_frames(model, [], [], include_usage=True, tool=(call_id, name, text)))
    body = completion(model, "")
    body["choices"][0].update(finish_reason="tool_calls", message={"role": "assistant", "content": "", "tool_calls": [
        {"id": call_id, "type": "function", "index": 0, "function": {"name": name, "arguments": text}}]})
    return Reply.json(body)


def _tool_message_problem(messages: list[dict[str, Any]]) -> str | None:
    """Every assistant ``tool_calls`` answered by ``tool`` messages right after it, and no stray ``tool`` message."""
    pending: list[Any] = []  # tool call ids as the client sent them
    for index, message in enumerate(messages):
        if message["role"] == "tool":
            if message.get("tool_call_id") not in pending:
                return "messages with role 'tool' must be a response to a preceeding message with 'tool_calls'."
            pending.remove(message["tool_call_id"])
            continue
        if pending:
            return ('An assistant message with "tool_calls" must be followed by tool messages responding to each '
                    f'"tool_call_id". The following tool_call_ids did not have response messages: {pending[0]} '
                    f"(before messages[{index}])")
        pending = [c.get("id") for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    return None


def body_problem(body: Any, models: Collection[str] | None) -> Reply | None:
    """DashScope's answer to an invalid chat body, or None."""
    if not isinstance(body, dict):
        return invalid_parameter("The request body is not valid JSON.")
    model = body.get("model")
    if not model or (models is not None and model not in models):
        return error_reply(404, f"The model `{model or ''}` does not exist or you do not have access to it.",
                           "invalid_request_error", "model_not_found")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return invalid_parameter("Input should be a non-empty list: messages")
    if any(not isinstance(m, dict) or m.get("role") not in ROLES for m in messages):
        return invalid_parameter("Role must be in [system, user, assistant, tool]")
    if problem := _tool_message_problem(messages):
        return invalid_parameter(problem)
    if body.get("enable_thinking") and not body.get("stream"):
        return invalid_parameter("parameter.enable_thinking must be set to false for non-streaming calls")
    if "reasoning_effort" in body and "thinking_budget" in body:
        return invalid_parameter("parameter.reasoning_effort cannot be used together with parameter.thinking_budget")
    return None


class DashScopeSimulator(Simulator):
    """DashScope's general base and the Coding Plan's, on one loopback port.

    ``POST /compatible-mode/v1/chat/completions`` is the pay-as-you-go base
    (:attr:`api_base`): it takes ``keys`` and refuses a plan key with 403
    ``invalid api-key``.  ``POST /coding/v1/chat/completions`` stands for
    the plan's regional host (:attr:`plan_base`): it takes only
    ``plan_keys`` (401 ``invalid access token or token expired`` for any
    other key, and for ``expired_keys``) and only ``plan_models`` (400
    ``model 'x' is not supported``).
    """

    def __init__(self, keys: Collection[str] | None = None, models: Collection[str] | None = None,
                 reply_text: str = "Hello from the DashScope simulator.",
                 reasoning_text: str = "The user asks for a greeting, so greet.",
                 plan_keys: Collection[str] = frozenset(), plan_models: set[str] | None = None) -> None:
        super().__init__(keys, models)
        self.reply_text = reply_text
        self.reasoning_text = reasoning_text
        self.plan_keys = set(plan_keys)
        self.plan_models = plan_models
        #: Plan keys whose subscription has ended.
        self.expired_keys: set[str] = set()
        #: Qwen's OAuth side (chat.qwen.ai): the device grant with PKCE and the refresh grant, form bodies.
        self.oauth = OAuthServer("f0304373b74a44d2b584a3fb70ca9e56", style="form",
                                 token_path="/api/v1/oauth2/token", device_path="/api/v1/oauth2/device/code",
                                 answer_fields=lambda _kind, _grant: {"resource_url": self.resource_url})
        #: What the token answers name as the account's API host (default: this simulator's portal).
        self.resource_url = ""

    @property
    def api_base(self) -> str:
        """What a ``qwen-api-key`` entry's ``base-url`` is set to."""
        return f"{self.base_url}/compatible-mode/v1"

    @property
    def portal_base(self) -> str:
        """The portal's API base (``{root}/v1``, as on ``portal.qwen.ai``)."""
        return f"{self.base_url}/v1"

    async def start(self) -> str:
        """Listen, and name this simulator as the account's host in token answers unless a test chose another."""
        root = await super().start()
        self.resource_url = self.resource_url or root
        return root

    @property
    def plan_base(self) -> str:
        """What ``upstream-urls.qwen.coding-plan`` is set to."""
        return f"{self.base_url}/coding/v1"

    def routes(self) -> list[web.RouteDef]:
        """The compatible-mode and the Coding Plan chat endpoints."""
        return [web.post("/compatible-mode/v1/chat/completions", self.handle),
                web.post("/coding/v1/chat/completions", self.handle),
                web.post("/v1/chat/completions", self.handle), *self.oauth.routes()]

    def check(self, recorded: Recorded) -> Reply | None:
        """The bearer key for the base it was sent to, then the body, in Model Studio's words."""
        auth = recorded.headers.get("authorization", "")
        key = auth[7:] if auth.startswith("Bearer ") else ""
        on_plan = recorded.path.startswith("/coding/")
        if recorded.path.startswith("/v1/"):  # the portal
            if not self.oauth.valid(key):
                return error_reply(401, "invalid access token or token expired", "invalid_request_error",
                                   "invalid_api_key")
            if recorded.headers.get("x-dashscope-authtype") != "qwen-oauth":
                return error_reply(400, "missing X-DashScope-AuthType", "invalid_request_error", "invalid_parameter")
            try:
                return body_problem(recorded.json(), self.models)
            except ValueError:
                return invalid_parameter("The request body is not valid JSON.")
        if on_plan and (key not in self.plan_keys or key in self.expired_keys):
            return expired_reply()
        if not on_plan and key.startswith("sk-sp-"):
            return error_reply(403, "invalid api-key", "invalid_request_error", "invalid_api_key")
        if not on_plan and self.keys is not None and key not in self.keys:
            return error_reply(401, "Incorrect API key provided. ", "invalid_request_error", "invalid_api_key")
        try:
            body = recorded.json()
        except ValueError:
            return invalid_parameter("The request body is not valid JSON.")
        if on_plan and isinstance(body, dict) and self.plan_models is not None \
                and body.get("model") not in self.plan_models:
            return invalid_parameter(f"model '{body.get('model')}' is not supported")
        return body_problem(body, None if on_plan else self.models)

    def default_reply(self, recorded: Recorded) -> Reply:
        """Answer with :attr:`reply_text`, reasoning first when ``enable_thinking`` is on."""
        body = recorded.json()
        if not body.get("stream"):
            return Reply.json(completion(body["model"], self.reply_text))
        words = self.reply_text.split(" ")
        pieces = [w if i == 0 else f" {w}" for i, w in enumerate(words)]
        half = len(self.reasoning_text) // 2
        reasoning = [self.reasoning_text[:half], self.reasoning_text[half:]] if body.get("enable_thinking") else []
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return Reply.sse(chunk_frames(body["model"], pieces, reasoning, include_usage))
