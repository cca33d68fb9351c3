"""polyrelay provider: Qwen through Alibaba Model Studio (DashScope) API keys.

Wire facts: https://www.alibabacloud.com/help/en/model-studio/compatibility-of-openai-with-dashscope
(endpoints per region), https://www.alibabacloud.com/help/en/model-studio/deep-thinking
(``enable_thinking``, ``thinking_budget``, no thinking on non-stream calls).

DashScope's compatible mode speaks OpenAI Chat Completions, so the core's
defaults send ``Authorization: Bearer`` to ``{base}/chat/completions``, pass
chat clients' bodies through and decode ``reasoning_content`` deltas.  Two
things are DashScope's own:

* thinking is switched by ``enable_thinking`` / ``thinking_budget``, not
  ``reasoning_effort``, and is refused on non-stream calls: a translated
  request that asks for thinking gets the switch, and is streamed upstream
  (the core aggregates it for a non-stream client);
* ``insufficient_quota`` (429 or 403) means the key's account is spent, for
  every model: the key cools, not one model.

.. code-block:: yaml

    qwen-api-key:
      - api-key: sk-...
        base-url: https://dashscope-intl.aliyuncs.com/compatible-mode/v1   # optional: keys are per region
"""

from __future__ import annotations

from polyrelay import (
    AUTH_COOLDOWN,
    ClientRequest,
    Credential,
    Provider,
    ProviderPlugin,
    UpstreamRequest,
    Verdict,
    defaults,
    get_dialect,
    hookimpl,
    ir,
    jsonutil,
)

NAME = "qwen"
SECTION = "qwen-api-key"
API_BASE = "https://dashscope.aliyuncs.com/compatible-mode/v1"
MODELS = ("qwen3-coder-plus", "qwen3-coder-flash", "qwen3-max", "qwen-plus")


class Qwen(ProviderPlugin):
    """DashScope keys: the core's defaults plus DashScope's thinking switch and quota words."""

    name = NAME
    dialect = ir.OPENAI_CHAT
    urls = {"api": API_BASE}
    models = MODELS
    api_key_section = SECTION

    @hookimpl
    def translate_request(
        self, provider: Provider, request: ClientRequest, credential: Credential
    ) -> UpstreamRequest | None:
        """DashScope's thinking switch for translated requests; ``None`` (the core's default) otherwise."""
        # A chat client's own enable_thinking travels as it sent it.
        thinking = None if defaults.is_passthrough(provider, request) else request.decoded().thinking
        if thinking is None:
            return None
        upstream = defaults.translate_request(provider, request, credential)
        body = jsonutil.loads(upstream.body)
        # enable_thinking is the switch these models know; reasoning_effort (newest models only) may
        # not even come next to thinking_budget.
        body.pop("reasoning_effort", None)
        body["enable_thinking"] = thinking.enabled and thinking.effort != "none"
        if body["enable_thinking"] and thinking.budget and thinking.budget > 0:
            body["thinking_budget"] = thinking.budget
        if body["enable_thinking"] and not upstream.stream:
            body.update(stream=True, stream_options={"include_usage": True})
            upstream.stream = True
            upstream.headers["accept"] = "text/event-stream"
        upstream.body = jsonutil.dumps(body)
        return upstream

    @hookimpl
    def classify_response(self, status: int, body: bytes) -> Verdict | None:
        """A spent account cools the key for every model; other answers get the core's default."""
        if status not in (403, 429):
            return None
        error = get_dialect(ir.OPENAI_CHAT).decode_error(status, body)
        # Coded quota errors are the core default's; DashScope sometimes says it only in words.
        if "quota exceeded" not in error.message.lower():
            return None
        return Verdict("next", error, scope="credential", cooldown=error.retry_after or AUTH_COOLDOWN)


plugin = Qwen()
