"""polyrelay provider: Qwen through Model Studio keys and Coding Plan subscriptions.

DashScope's compatible mode and the Coding Plan both speak OpenAI Chat
Completions (https://www.alibabacloud.com/help/en/model-studio/compatibility-of-openai-with-dashscope),
so the core's defaults send ``Authorization: Bearer`` to
``{base}/chat/completions``, pass chat clients' bodies through and decode
``reasoning_content`` deltas.  What is Qwen's own:

* thinking is switched by ``enable_thinking`` / ``thinking_budget``, not
  ``reasoning_effort``, and is refused on non-stream calls: a translated
  request that asks for thinking gets the switch, and is streamed upstream
  (the core aggregates it for a non-stream client);
* streams always ask for the usage chunk (``stream_options.include_usage``);
* ``insufficient_quota`` (429 or 403) means the key's account is spent, for
  every model: the key cools, not one model;
* Coding Plan keys (``sk-sp-…``) live on the plan's own base and meter a
  5-hour window (:mod:`polyrelay_qwen.plan`); plan keys and DashScope keys
  serving one model rotate in one pool.

.. code-block:: yaml

    qwen-coding-plan:
      - api-key: sk-sp-...
        region: intl          # china (default) or intl
        priority: 1           # spend the subscription before pay-as-you-go keys
    qwen-api-key:
      - api-key: sk-...
        base-url: https://dashscope-intl.aliyuncs.com/compatible-mode/v1   # optional: keys are per region
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from polyrelay import (
    AUTH_COOLDOWN,
    ApiKeyEntry,
    ClientRequest,
    Config,
    Credential,
    ModelInfo,
    Provider,
    UpstreamRequest,
    Verdict,
    alias_models,
    credentials_from_entries,
    defaults,
    get_dialect,
    hookimpl,
    ir,
    jsonutil,
)
from polyrelay.accounts.plugin import AccountProviderPlugin
from polyrelay_qwen import accounts, plan
from polyrelay_qwen.plan import CodingPlanEntry

if TYPE_CHECKING:
    from polyrelay.accounts import LoginFlow, OAuthRefresh
    from polyrelay.demo import DemoBackend

log = logging.getLogger("polyrelay.qwen")

NAME = "qwen"
SECTION = "qwen-api-key"
API_BASE = "https://dashscope.aliyuncs.com/compatible-mode/v1"
MODELS = ("qwen3-coder-plus", "qwen3-coder-flash", "qwen3-max", "qwen-plus")
PLAN_SECTION = "qwen-coding-plan"


class Qwen(AccountProviderPlugin):
    """DashScope keys, Coding Plan keys and Qwen OAuth accounts, in one pool."""

    name = NAME
    dialect = ir.OPENAI_CHAT
    urls = {"api": API_BASE, **plan.PLAN_URLS, **accounts.URLS}
    models = MODELS
    api_key_section = SECTION
    account_type = "qwen"

    def account_credential(self, path: Path, data: dict[str, Any]) -> Credential | None:
        """A ``type: "qwen"`` file, served from the host its token names."""
        return accounts.account_credential(self.name, path, data)

    def refresher(self) -> OAuthRefresh:
        """Qwen's form refresh grant (a new ``resource_url`` in the answer moves the account)."""
        return accounts.refresher()

    def login_flow(self) -> LoginFlow:
        """``polyrelay login qwen``: the device grant with PKCE."""
        from polyrelay_qwen import login

        return login.login_flow()

    def plan_entries(self, config: Config) -> list[CodingPlanEntry]:
        """Every enabled Coding Plan key: the ``qwen-coding-plan`` list, then plan keys found in ``qwen-api-key``."""
        entries = [e for e in config.sections.get(PLAN_SECTION) or [] if not e.disabled]
        for entry in super().key_entries(config):
            if plan.is_plan_key(entry.api_key) and _general_base(entry.base_url):
                entries.append(CodingPlanEntry(**{**attrs.asdict(entry, recurse=False), "base_url": ""}))
        return entries

    def key_entries(self, config: Config) -> list[ApiKeyEntry]:
        """The pay-as-you-go keys (a plan key never goes to the general base)."""
        return [e for e in super().key_entries(config)
                if not (plan.is_plan_key(e.api_key) and _general_base(e.base_url))]

    def build_provider(self, config: Config) -> Provider:
        """The DashScope models, and the plan's when a plan key exists."""
        provider = super().build_provider(config)
        plan_entries = self.plan_entries(config)
        if plan_entries:
            known = {m.id for m in provider.models}
            provider.models += [ModelInfo(m) for m in plan.PLAN_MODELS if m not in known]
            provider.models += [m for m in alias_models(list(plan_entries)) if m.id not in known]
        return provider

    @hookimpl
    def config_sections(self) -> dict[str, object]:
        """``qwen-api-key`` (DashScope) and ``qwen-coding-plan``."""
        return {SECTION: list[ApiKeyEntry], PLAN_SECTION: list[CodingPlanEntry]}

    @hookimpl
    def config_credentials(self, config: Config, provider: Provider) -> list[Credential]:
        """DashScope keys as ``qwen#<n>``, plan keys as ``qwen-coding-plan#<n>`` on their region's base."""
        if provider.name != NAME:
            return []
        credentials = credentials_from_entries(NAME, self.key_entries(config))
        entries = self.plan_entries(config)
        for index, (entry, credential) in enumerate(zip(entries, credentials_from_entries(NAME, list(entries)),
                                                        strict=True)):
            credential.id = f"{PLAN_SECTION}#{index}"
            if not entry.base_url and entry not in (config.sections.get(PLAN_SECTION) or []):
                log.info("qwen-api-key entry %s is a Coding Plan key: serving it from the plan's base",
                         credential.label)
            credential.base_url = entry.base_url or plan.plan_base(provider.urls, entry.region)
            if credential.models is None:
                credential.models = list(plan.PLAN_MODELS)
            credentials.append(credential)
        return credentials

    @hookimpl
    def translate_request(
        self, provider: Provider, request: ClientRequest, credential: Credential
    ) -> UpstreamRequest | None:
        """Qwen's body rules; an OAuth account's own host and Qwen Code's headers."""
        upstream = _body_rules(provider, request, credential)
        if credential.kind != "oauth":
            return upstream
        upstream = upstream or defaults.translate_request(provider, request, credential)
        default_base = provider.url("api", credential)
        base = credential.base_url or provider.url("portal")
        if upstream.url.startswith(default_base):
            upstream.url = base.rstrip("/") + upstream.url[len(default_base):]
        upstream.headers.update(accounts.PORTAL_HEADERS)
        return upstream

    @hookimpl
    def classify_response(self, status: int, headers: Mapping[str, str], body: bytes) -> Verdict | None:
        """The Coding Plan's quota and subscription answers, DashScope's quota words; else the core's default."""
        if status < 400:
            return None
        error = get_dialect(ir.OPENAI_CHAT).decode_error(status, body)
        hint = defaults.retry_after_header(headers)
        verdict = plan.classify(status, error, hint if hint is not None else error.retry_after)
        if verdict is not None:
            return verdict
        if status in (401, 403) and "discontinued" in error.message.lower():
            return Verdict("next", error, scope="credential", disable=accounts.DISCONTINUED_REASON)
        # Coded quota errors are the core default's; DashScope sometimes says it only in words.
        if status in (403, 429) and "quota exceeded" in error.message.lower():
            return Verdict("next", error, scope="credential", cooldown=hint or error.retry_after or AUTH_COOLDOWN)
        return None

    @hookimpl
    def demo_backends(self) -> list[DemoBackend]:
        """The DashScope compatible-mode simulator in ``polyrelay serve --demo``."""
        from polyrelay_qwen.demo import demo_backend  # loaded by ``serve --demo`` only (docs/architecture.md)

        return [demo_backend(self)]


def _body_rules(provider: Provider, request: ClientRequest, credential: Credential) -> UpstreamRequest | None:
    """DashScope's thinking switch for translated requests, the usage chunk on every stream; None: the default."""
    if defaults.is_passthrough(provider, request):
        # A chat client's own switches travel as it sent them; only the usage chunk is asked for.
        options = request.json.get("stream_options")
        if not request.stream or (isinstance(options, dict) and options.get("include_usage")):
            return None
        upstream = defaults.translate_request(provider, request, credential)
        body = jsonutil.loads(upstream.body)
        body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        upstream.body = jsonutil.dumps(body)
        return upstream
    thinking = request.decoded().thinking
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


def _general_base(base_url: str) -> bool:
    """Whether an entry's ``base-url`` is unset or DashScope's general (pay-as-you-go) base."""
    return not base_url or "/compatible-mode" in base_url


plugin = Qwen()
