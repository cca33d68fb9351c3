"""Requests to Code Assist (``cloudcode-pa``) on behalf of a Google account (gemini-cli, CLIProxyAPI).

The client's request becomes a Gemini request (as it is from a Gemini
client, through the codecs from any other), goes into the envelope with the
project of the credential, and is sent with the headers Gemini CLI sends.
The model travels in the body, never in the URL.  The answer's envelope is
taken off by the core (:attr:`UpstreamRequest.unwrap`), so codecs and
pass-through clients see plain Gemini.
"""

from __future__ import annotations

import platform
import sys
from typing import Any

import aiohttp
import attrs

from polyrelay import ir, jsonutil
from polyrelay.defaults import is_passthrough
from polyrelay.dialects import get_dialect
from polyrelay.types import ClientRequest, Credential, Provider, UpstreamRequest
from polyrelay_gemini import envelope
from polyrelay_gemini.accounts import ProjectCredential

#: The Gemini CLI release whose headers we send, and the SDK it reports (CLIProxyAPI's constants).
CLI_VERSION = "0.34.0"
API_CLIENT = "google-genai-sdk/1.41.0 gl-node/v22.19.0"
_ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64", "i386": "ia32", "i686": "ia32"}


def user_agent(model: str) -> str:
    """Gemini CLI's ``User-Agent``: version, model, then Node's platform and arch names."""
    arch = _ARCH.get(platform.machine().lower(), platform.machine().lower() or "unknown")
    return f"GeminiCLI/{CLI_VERSION}/{model or 'unknown'} ({sys.platform}; {arch}; terminal)"


def headers(token: str, model: str, stream: bool) -> dict[str, str]:
    """The headers of every Code Assist call (``model`` ``""`` for setup calls)."""
    return {
        "authorization": f"Bearer {token}",
        "content-type": "application/json",
        "accept": "text/event-stream" if stream else "application/json",
        "accept-encoding": "gzip, deflate",
        "user-agent": user_agent(model),
        "x-goog-api-client": API_CLIENT,
    }


def gemini_request(provider: Provider, request: ClientRequest) -> dict[str, Any]:
    """What the client asks for, as a Gemini request (a Gemini client's own body when it can pass)."""
    if is_passthrough(provider, request):
        return request.json
    decoded = attrs.evolve(request.decoded(), model=request.upstream_model, stream=request.stream)
    return get_dialect(ir.GEMINI).encode_request(decoded)


def generate_request(provider: Provider, request: ClientRequest, credential: ProjectCredential) -> UpstreamRequest:
    """``:generateContent`` or ``:streamGenerateContent?alt=sse`` for the credential's project."""
    action = "streamGenerateContent?alt=sse" if request.stream else "generateContent"
    body = envelope.wrap(gemini_request(provider, request), request.upstream_model, credential.project)
    return UpstreamRequest(
        url=f"{provider.url('code-assist')}:{action}",
        body=jsonutil.dumps(body),
        headers={**headers(credential.secret, request.upstream_model, request.stream), **credential.headers},
        stream=request.stream,
        unwrap=envelope.unwrap,
    )


async def count_tokens(request: ClientRequest, credential: Credential, session: aiohttp.ClientSession,
                       provider: Provider) -> int | None:
    """``:countTokens`` for an account's project (``{"request": {model, contents}}``, as Gemini CLI sends);
    None for a key or an answer without a count (the core's estimate stands in)."""
    if not isinstance(credential, ProjectCredential):
        return None
    model = request.upstream_model
    contents = envelope.fix_request(get_dialect(ir.GEMINI).encode_request(request.decoded()), model)["contents"]
    body = {"request": {"model": f"models/{model}", "contents": contents}}
    async with session.post(f"{provider.url('code-assist')}:countTokens", data=jsonutil.dumps(body),
                            headers=headers(credential.secret, model, False)) as response:
        if response.status != 200:
            return None
        answer = jsonutil.loads(await response.read())
    tokens = answer.get("totalTokens") if isinstance(answer, dict) else None
    return tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None
