"""A request to the ChatGPT backend for a subscription account.

The backend speaks the Responses API with rules of its own: it only
streams (``stream: true``), keeps nothing (``store: false``), rejects a set
of public-API parameters with a 400, knows no ``system`` role and no tool
name or call id over 64 characters.  Accounts are addressed with the
account id from the id token and look like Codex CLI (``Originator``, its
user agent, a session id).  API keys get none of this.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from polyrelay import jsonutil
from polyrelay.types import Credential
from polyrelay_codex import names

ORIGINATOR = "codex_cli_rs"
USER_AGENT = "codex_cli_rs/0.171.0 (Linux 6.8.0; x86_64) unknown"
#: Public Responses parameters the backend answers with ``Unsupported parameter: <name>``.
UNSUPPORTED = ("max_output_tokens", "max_completion_tokens", "temperature", "top_p", "truncation", "user",
               "prompt_cache_retention", "safety_identifier", "stream_options", "previous_response_id")
#: Codex CLI's own headers, forwarded when the client sends them (the backend reads them for its telemetry).
CLIENT_HEADERS = ("version", "x-codex-turn-metadata", "x-client-request-id", "x-codex-window-id", "thread-id",
                  "x-codex-beta-features", "openai-beta")
ENCRYPTED_REASONING = "reasoning.encrypted_content"


def apply_rules(body: dict[str, Any]) -> bool:
    """Make a Responses body acceptable to the ChatGPT backend, in place; whether anything changed.

    ``instructions`` is left as the client gave it: Codex CLI sends none (its
    system prompt travels as ``developer`` input messages).  Encrypted
    reasoning is asked for because with ``store: false`` it is the only way a
    later turn can hand the reasoning back.
    """
    changed = False
    for key, value in (("stream", True), ("store", False)):
        if body.get(key) is not value:
            body[key] = value
            changed = True
    for key in UNSUPPORTED:
        if key in body:
            del body[key]
            changed = True
    if "service_tier" in body and body["service_tier"] != "priority":
        del body["service_tier"]
        changed = True
    if isinstance(body.get("input"), str):
        body["input"] = [{"type": "message", "role": "user",
                          "content": [{"type": "input_text", "text": body["input"]}]}]
        changed = True
    for item in body.get("input") or []:
        if isinstance(item, dict) and item.get("role") == "system":
            item["role"] = "developer"
            changed = True
    include = body.get("include")
    if not isinstance(include, list):
        body["include"] = [ENCRYPTED_REASONING]
        changed = True
    elif ENCRYPTED_REASONING not in include:
        include.append(ENCRYPTED_REASONING)
        changed = True
    return changed


def chatgpt_body(raw: bytes) -> tuple[bytes, dict[str, Any], dict[str, str]]:
    """The bytes to send, the body they hold, and ``{stand-in: original}`` for the names shortened.

    A body that already meets every rule (Codex CLI's) goes up byte for byte.
    """
    body = jsonutil.loads(raw)
    if not isinstance(body, dict):
        return raw, {}, {}
    changed = apply_rules(body)
    restore = names.shorten(body)
    if not changed and not restore:
        return raw, body, {}
    return jsonutil.dumps(body), body, restore


def session_id(client_headers: Mapping[str, str], body: Mapping[str, Any]) -> str:
    """The client's session (Codex CLI's header, else its prompt cache key), else a new one."""
    for name in ("session-id", "session_id"):
        value = client_headers.get(name)
        if value:
            return value
    key = body.get("prompt_cache_key")
    return key if isinstance(key, str) and key else str(uuid.uuid4())


def chatgpt_headers(
    credential: Credential, client_headers: Mapping[str, str], body: Mapping[str, Any]
) -> dict[str, str]:
    """The headers of one request for an account.

    A Codex client's own ``Originator`` and user agent are kept (it is the
    client the backend expects); anything else is presented as Codex CLI.
    """
    headers = {
        "content-type": "application/json",
        "accept": "text/event-stream",
        "authorization": f"Bearer {credential.secret}",
        "originator": ORIGINATOR,
        "user-agent": USER_AGENT,
        "session-id": session_id(client_headers, body),
    }
    account = credential.data.get("account_id")
    if isinstance(account, str) and account:
        headers["chatgpt-account-id"] = account
    if client_headers.get("originator"):
        headers["originator"] = client_headers["originator"]
        headers["user-agent"] = client_headers.get("user-agent") or USER_AGENT
    for name in CLIENT_HEADERS:
        value = client_headers.get(name)
        if value:
            headers[name] = value
    headers.update(credential.headers)
    return headers
