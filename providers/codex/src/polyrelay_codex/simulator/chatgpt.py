"""A fake of the ChatGPT backend Codex CLI's accounts use (``/backend-api/codex/responses``).

It checks what the backend checks: a bearer access token it issued (401
``token_expired`` once the token is expired or unknown), the
``Chatgpt-Account-Id`` of that token's account, then the body rules, each
with the backend's ``{"detail": ...}`` 400 — ``stream`` must be true,
``store`` must be false, no ``max_output_tokens`` and the other public-API
parameters, a model the account's plan serves — and tool names and call ids
of at most 64 characters.

Answers are always streams, framed like the backend's: ``event:`` lines, no
``sequence_number``, the items only in ``response.output_item.done`` and
``response.completed`` with an empty ``output``.  Every answer, errors
included, carries the ``x-codex-primary-*`` / ``x-codex-secondary-*``
usage headers of the account.  Scripted answers: :func:`usage_limit_reply`
(429 with ``resets_at``, ``resets_in_seconds`` and the headers of a spent
window), :func:`failed_stream_reply` (a 200 whose first event is
``response.failed``), :func:`overloaded_reply`, :func:`usage_not_included_reply`.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import time
from pathlib import Path
from typing import Any

import attrs
from aiohttp import web

from polyrelay import jsonutil
from polyrelay.accounts import rfc3339
from polyrelay.testing.simulator import Recorded, Reply, Simulator
from polyrelay_codex.account import file_name
from polyrelay_codex.simulator.oauth import DEVICE_PATH, CodexAuthServer, Identity
from polyrelay_codex.simulator.responses import _tool_problem, error_body, sse_frames, stream_events

# The backend's facts are written out here, not imported from the provider, so a fact the
# provider gets wrong fails a test instead of agreeing with itself.

#: Parameters of the public API the backend refuses (each gets its own 400).
UNSUPPORTED = ("max_output_tokens", "max_completion_tokens", "temperature", "top_p", "truncation", "user",
               "prompt_cache_retention", "safety_identifier", "stream_options", "previous_response_id")
MODELS = frozenset({"gpt-5", "gpt-5-codex", "gpt-5.1", "gpt-5.1-codex", "gpt-5-mini"})
LIMIT = 64
WINDOW_MINUTES = {"primary": 300, "secondary": 10080}

_ids = itertools.count(1)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(jsonutil.dumps(data)).decode().rstrip("=")


def make_jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT carrying ``claims`` (the gateway reads claims, it cannot check OpenAI's signature)."""
    return f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64(claims)}.c2lt"


def identity_token(identity: Identity) -> str:
    """The id token of an identity."""
    return id_token(identity.email, identity.account_id, identity.plan)


def id_token(email: str, account_id: str, plan: str = "plus", user_id: str = "user-sim") -> str:
    """An id token as auth.openai.com issues it for a ChatGPT account."""
    return make_jwt({"iss": "https://auth.openai.com", "aud": ["app_EMoamEEZ73f0CkXaXp7hrann"], "email": email,
                     "email_verified": True, "exp": int(time.time()) + 3600,
                     "https://api.openai.com/auth": {"chatgpt_account_id": account_id, "chatgpt_plan_type": plan,
                                                     "chatgpt_user_id": user_id, "organizations": []}})


def detail_reply(status: int, detail: str) -> Reply:
    """The backend's own error form: ``{"detail": "..."}``."""
    return Reply.json({"detail": detail}, status=status)


def _usage_headers(used: tuple[float, float], reset_in: float = 3600.0) -> dict[str, str]:
    now = time.time()
    headers = {}
    for name, percent in zip(("primary", "secondary"), used, strict=True):
        headers[f"x-codex-{name}-used-percent"] = f"{percent:g}"
        headers[f"x-codex-{name}-window-minutes"] = str(WINDOW_MINUTES[name])
        headers[f"x-codex-{name}-reset-after-seconds"] = str(int(reset_in))
        headers[f"x-codex-{name}-reset-at"] = str(int(now + reset_in))
    return headers


def usage_limit_reply(resets_in: float = 3600.0, plan: str = "plus", resets_at: float | None = None) -> Reply:
    """429 ``usage_limit_reached``: the account's window is spent until ``resets_at`` (now + ``resets_in``)."""
    at = resets_at if resets_at is not None else time.time() + resets_in
    body = {"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                      "plan_type": plan, "resets_at": int(at), "resets_in_seconds": int(at - time.time())}}
    return Reply(status=429, body=body, headers=_usage_headers((100.0, 40.0), at - time.time()))


def usage_not_included_reply(plan: str = "free") -> Reply:
    """429 ``usage_not_included``: the plan does not include Codex."""
    body = {"error": {"type": "usage_not_included", "plan_type": plan,
                      "message": "To use Codex with your ChatGPT plan, upgrade to Plus: https://openai.com/chatgpt/pricing."}}
    return Reply.json(body, status=429)


def overloaded_reply() -> Reply:
    """503 ``server_is_overloaded``."""
    return Reply.json({"error": {"type": "server_error", "code": "server_is_overloaded",
                                 "message": "Our servers are currently overloaded. Please try again later."}},
                      status=503)


def failed_stream_reply(code: str = "server_is_overloaded", model: str = "gpt-5",
                        message: str = "Our servers are currently overloaded. Please try again later.",
                        **error: Any) -> Reply:
    """A 200 stream whose first meaningful event is ``response.failed`` (after created / in_progress).

    ``error`` adds fields to the failure's ``error`` object (``resets_in_seconds`` for a usage limit).
    """
    response = {"id": f"resp_sim{next(_ids):040x}", "object": "response", "created_at": int(time.time()),
                "status": "in_progress", "model": model, "output": [], "error": None}
    failed = {**response, "status": "failed", "error": {"code": code, "message": message, **error}}
    events = [{"type": "response.created", "response": response},
              {"type": "response.in_progress", "response": response},
              {"type": "response.failed", "response": failed}]
    return Reply.sse(sse_frames(events))


def backend_events(body: dict[str, Any], pieces: list[str], reasoning: list[str],
                   call: tuple[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The Responses event sequence as the backend sends it: no sequence numbers, empty final ``output``."""
    events = stream_events(body, pieces, reasoning, call)
    for event in events:
        event.pop("sequence_number", None)
    final = events[-1]
    final["response"] = {**final["response"], "output": []}
    return events


def function_call_reply(name: str, arguments: dict[str, Any], model: str = "gpt-5",
                        text: str = "Let me check.") -> Reply:
    """A stream that says ``text`` and calls function ``name``."""
    return Reply.sse(sse_frames(backend_events({"model": model}, [text], ["Need the file."], (name, arguments))))


@attrs.define
class Account:
    """One ChatGPT account the backend knows."""

    account_id: str
    plan: str = "plus"
    #: Used percent of the 5-hour and weekly windows, sent on every answer.
    used: tuple[float, float] = (12.0, 3.0)


class ChatGPTSimulator(Simulator):
    """The backend at ``{root}/backend-api/codex`` and auth.openai.com (:attr:`auth`) on the same root."""

    def __init__(self, models: frozenset[str] = MODELS, reply_text: str = "Hello from the ChatGPT simulator.",
                 reasoning_text: str = "**Greeting** The user wants a hello.") -> None:
        super().__init__()
        self.models = models
        self.reply_text = reply_text
        self.reasoning_text = reasoning_text
        #: Access token → account; the OAuth side issues tokens into it.
        self.tokens: dict[str, Account] = {}
        #: auth.openai.com: login, refresh, deviceauth; every token it issues works here.
        self.auth = CodexAuthServer(on_token=self._issued, id_token=identity_token)

    def _issued(self, access_token: str, identity: Identity) -> None:
        self.tokens[access_token] = Account(identity.account_id, identity.plan)

    @property
    def chatgpt_base(self) -> str:
        """What ``upstream-urls: {codex: {chatgpt: ...}}`` is set to."""
        return f"{self.base_url}/backend-api/codex"

    @property
    def urls(self) -> dict[str, str]:
        """Every address of the provider, pointing here."""
        return {"chatgpt": self.chatgpt_base, "oauth-authorize": f"{self.base_url}/oauth/authorize",
                "oauth-token": f"{self.base_url}/oauth/token", "oauth-device": f"{self.base_url}{DEVICE_PATH}"}

    def routes(self) -> list[web.RouteDef]:
        """The Responses endpoint of the backend, and auth.openai.com's."""
        return [web.post("/backend-api/codex/responses", self.handle), *self.auth.routes()]

    def add_token(self, access_token: str, account: Account) -> None:
        """Accept ``access_token`` for ``account`` from now on."""
        self.tokens[access_token] = account
        self.auth.access_tokens.add(access_token)

    def write_account(self, auth_dir: Path, email: str, plan: str = "plus", expires_in: float = 3600.0,
                      **fields: Any) -> Path:
        """A CLIProxyAPI ``codex-*.json`` file in ``auth_dir`` for a new account, its tokens live here."""
        identity = Identity(email, f"acct-{secrets.token_hex(6)}", plan)
        key = f"file-{email}"
        self.auth.identities[key] = identity
        access, refresh = self.auth.seed(key)
        path = auth_dir / file_name(email, plan)
        data = {"type": "codex", "id_token": identity_token(identity), "access_token": access,
                "refresh_token": refresh, "account_id": identity.account_id, "email": email,
                "last_refresh": rfc3339(time.time()), "expired": rfc3339(time.time() + expires_in), **fields}
        path.write_text(json.dumps(data))
        return path

    def config(self, auth_dir: Path, extra: str = "") -> str:
        """Config YAML serving the accounts of ``auth_dir`` from here (login, refresh and backend)."""
        lines = [f"auth-dir: {auth_dir}", "upstream-urls:", "  codex:"]
        lines += [f"    {name}: {url}" for name, url in self.urls.items()]
        return "\n".join(lines) + f"\n{extra}\n"

    def account_of(self, recorded: Recorded) -> Account | None:
        """The account whose token a request carried."""
        auth = recorded.headers.get("authorization", "")
        return self.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None

    async def play(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        """Every answer carries the account's usage headers (a script's own win)."""
        account = self.tokens.get(request.headers.get("authorization", "")[7:])
        if account is not None:
            reply = attrs.evolve(reply, headers={**_usage_headers(account.used), **reply.headers})
        return await super().play(request, reply)

    def check(self, recorded: Recorded) -> Reply | None:
        """The token, the account header, then the body rules, in the backend's words."""
        auth = recorded.headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if token not in self.tokens or not self.auth.valid(token):
            return Reply.json(error_body("Provided authentication token is expired. Please try signing in again.",
                                         "invalid_request_error", "token_expired"), status=401)
        account = self.tokens[token]
        if recorded.headers.get("chatgpt-account-id") != account.account_id:
            return detail_reply(403, "ChatGPT-Account-Id header does not match the authenticated account")
        try:
            body = recorded.json()
        except ValueError:
            return detail_reply(400, "Invalid JSON body")
        if not isinstance(body, dict):
            return detail_reply(400, "Invalid JSON body")
        return self.body_problem(body)

    def body_problem(self, body: dict[str, Any]) -> Reply | None:
        """The backend's 400 for a body it refuses, or None."""
        if body.get("stream") is not True:
            return detail_reply(400, "Stream must be set to true")
        if body.get("store") is not False:
            return detail_reply(400, "Store must be set to false")
        for param in (*UNSUPPORTED, "service_tier"):
            if param in body and not (param == "service_tier" and body[param] == "priority"):
                return detail_reply(400, f"Unsupported parameter: {param}")
        if self.models is not None and body.get("model") not in self.models:
            return detail_reply(400, f"The '{body.get('model')}' model is not supported when using Codex with a "
                                     "ChatGPT account.")
        fields = [(f"tools[{i}].name", t.get("name")) for i, t in enumerate(body.get("tools") or [])
                  if isinstance(t, dict)]
        fields += [(f"input[{i}].call_id", t.get("call_id")) for i, t in enumerate(body.get("input") or [])
                   if isinstance(t, dict)]
        for where, value in fields:
            if isinstance(value, str) and len(value) > LIMIT:
                return Reply.json(error_body(f"Invalid '{where}': string too long. Expected a string with maximum "
                                             f"length {LIMIT}, but got a string with length {len(value)} instead.",
                                             "invalid_request_error", "string_above_max_length", where), status=400)
        return _tool_problem(body)

    def default_reply(self, recorded: Recorded) -> Reply:
        """Stream :attr:`reply_text` after a reasoning summary."""
        body = recorded.json()
        words = self.reply_text.split(" ")
        pieces = [w if i == 0 else f" {w}" for i, w in enumerate(words)]
        half = len(self.reasoning_text) // 2
        reasoning = [self.reasoning_text[:half], self.reasoning_text[half:]]
        return Reply.sse(sse_frames(backend_events(body, pieces, reasoning)))
