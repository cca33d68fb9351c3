"""What a Claude subscription token needs upstream.

Source: router-for-me/CLIProxyAPI internal/runtime/executor/claude_executor*.go and helps/cloak_utils.go (the
OAuth beta, the Claude Code identity texts), as Claude Code itself sends them.

``Authorization: Bearer``, the OAuth betas merged into the client's own
``anthropic-beta`` (never duplicated), and a Claude Code identity block at
the head of ``system``.  A request that already carries one of Claude
Code's identity texts (after any leading billing block, as the real client
sends it) goes up byte for byte, the model name aside; any other gets
``You are Claude Code, Anthropic's official CLI for Claude.`` prepended.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from polyrelay import defaults, ir, jsonutil
from polyrelay.dialects import get_dialect
from polyrelay.types import ClientRequest, Credential, Provider, UpstreamRequest

IDENTITY = "You are Claude Code, Anthropic's official CLI for Claude."
IDENTITIES = frozenset({
    IDENTITY,
    "You are Claude Code, Anthropic's official CLI for Claude, running within the Claude Agent SDK.",
    "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
})
BILLING_PREFIX = "x-anthropic-billing-header:"
#: Betas a subscription token cannot do without; Claude Code leads with the first.
OAUTH_BETAS = ("claude-code-20250219", "oauth-2025-04-20")
COUNT_BETA = "token-counting-2024-11-01"
ANTHROPIC_VERSION = "2023-06-01"
#: Client headers forwarded for Anthropic clients: Claude Code's fingerprint, never its auth.
FORWARDED_HEADERS = frozenset({
    "anthropic-version", "user-agent", "x-app", "anthropic-dangerous-direct-browser-access",
    "x-claude-code-session-id", "x-client-request-id",
})
#: What other clients are sent in their place (Claude Code's own values).
CLAUDE_CODE_HEADERS = {"x-app": "cli", "user-agent": "claude-cli/2.1.197 (external, cli)",
                       "anthropic-dangerous-direct-browser-access": "true"}
#: Fields ``/v1/messages/count_tokens`` accepts.
COUNT_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers")


def merge_betas(client: str | None, required: Sequence[str]) -> str:
    """The client's betas, each once; when some required ones are missing, the required set leads
    (in Claude Code's order) and the client's others follow in theirs."""
    seen: list[str] = []
    for beta in (client or "").split(","):
        beta = beta.strip()
        if beta and beta not in seen:
            seen.append(beta)
    if all(b in seen for b in required):
        return ",".join(seen)
    return ",".join([*required, *(b for b in seen if b not in required)])


def _blocks(system: Any) -> list[Any]:
    if isinstance(system, str):
        return [{"type": "text", "text": system}] if system else []
    return list(system) if isinstance(system, list) else []


def _text(block: Any) -> str | None:
    if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
        return str(block["text"])
    return None


def _billing_blocks(blocks: list[Any]) -> int:
    count = 0
    for block in blocks:
        text = _text(block)
        if text is None or not text.startswith(BILLING_PREFIX):
            break
        count += 1
    return count


def has_identity(system: Any) -> bool:
    """Whether ``system`` already opens (after billing blocks) with a Claude Code identity text."""
    blocks = _blocks(system)
    head = _billing_blocks(blocks)
    return head < len(blocks) and (_text(blocks[head]) or "").strip() in IDENTITIES


def with_identity(system: Any) -> list[Any]:
    """``system`` with the identity block after its billing blocks and before the client's own text."""
    blocks = _blocks(system)
    head = _billing_blocks(blocks)
    return [*blocks[:head], {"type": "text", "text": IDENTITY}, *blocks[head:]]


def _shaped(body: bytes, system: Any) -> bytes:
    if has_identity(system):
        return body
    data = jsonutil.loads(body)
    data["system"] = with_identity(data.get("system"))
    return jsonutil.dumps(data)


def oauth_headers(provider: Provider, request: ClientRequest, credential: Credential,
                  betas: Sequence[str]) -> dict[str, str]:
    """Bearer auth, the merged betas, and Claude Code's fingerprint headers."""
    headers = {"content-type": "application/json", "accept-encoding": "gzip, deflate"}
    headers.update(provider.headers)
    if request.dialect == ir.ANTHROPIC:
        headers.update({k.lower(): v for k, v in request.headers.items()
                        if k.lower() in FORWARDED_HEADERS or k.lower().startswith("x-stainless-")})
    else:
        headers.update(CLAUDE_CODE_HEADERS)
    headers.setdefault("anthropic-version", ANTHROPIC_VERSION)
    client_betas = request.headers.get("anthropic-beta") if request.dialect == ir.ANTHROPIC else None
    headers["anthropic-beta"] = merge_betas(client_betas, betas)
    headers["authorization"] = f"Bearer {credential.secret}"
    headers.update(credential.headers)
    return headers


def oauth_request(provider: Provider, request: ClientRequest, credential: Credential) -> UpstreamRequest:
    """``POST {api}/v1/messages?beta=true`` as Claude Code sends it, for a subscription token."""
    stream = request.stream or provider.stream_only
    body = defaults.upstream_body(provider, request, stream)
    system = request.json.get("system") if defaults.is_passthrough(provider, request) else \
        jsonutil.loads(body).get("system")
    headers = oauth_headers(provider, request, credential, OAUTH_BETAS)
    if stream:
        headers["accept"] = "text/event-stream"
    return UpstreamRequest(url=f"{provider.url('api', credential)}/v1/messages?beta=true",
                           body=_shaped(body, system), headers=headers, stream=stream)


def count_body(request: ClientRequest, oauth: bool) -> bytes:
    """The client's request as a ``count_tokens`` body (Anthropic fields only)."""
    if request.dialect == ir.ANTHROPIC:
        data: Mapping[str, Any] = request.json
    else:
        data = get_dialect(ir.ANTHROPIC).encode_request(request.decoded())
    body = {k: data[k] for k in COUNT_FIELDS if k in data}
    body["model"] = request.upstream_model
    if oauth and not has_identity(body.get("system")):
        body["system"] = with_identity(body.get("system"))
    return jsonutil.dumps(body)


def count_request(provider: Provider, request: ClientRequest, credential: Credential) -> UpstreamRequest:
    """``POST {api}/v1/messages/count_tokens`` for either kind of credential."""
    base = provider.url("api", credential)
    if credential.kind == "oauth":
        headers = oauth_headers(provider, request, credential, (*OAUTH_BETAS, COUNT_BETA))
        return UpstreamRequest(url=f"{base}/v1/messages/count_tokens?beta=true", body=count_body(request, True),
                               headers=headers)
    headers = {"content-type": "application/json", "x-api-key": credential.secret,
               "anthropic-version": ANTHROPIC_VERSION, **credential.headers}
    if request.dialect == ir.ANTHROPIC and "anthropic-beta" in request.headers:
        headers["anthropic-beta"] = request.headers["anthropic-beta"]
    return UpstreamRequest(url=f"{base}/v1/messages/count_tokens", body=count_body(request, False), headers=headers)
