"""The objects plugins and core hand each other.

Providers, credentials, upstream requests and verdicts are plain attrs
classes: plugins build them, the core acts on them.  Secrets are kept out of
``repr`` so a stray log line or traceback cannot leak them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import attrs

from polyrelay import ir

if TYPE_CHECKING:
    import aiohttp

    from polyrelay.dialects.base import Dialect, StreamDecoder
    from polyrelay.passthrough import PassthroughDecoder


@attrs.define
class ModelInfo:
    """A model a provider serves: ``id`` is what clients ask for,
    ``upstream`` what is sent to the backend (defaults to ``id``)."""

    id: str
    upstream: str | None = None
    display_name: str | None = None
    #: Upstream names of this model's preview siblings, in the order to try them: with
    #: ``quota-exceeded.switch-preview-model`` on, they serve its requests once every credential
    #: is cooling after a 429 for it.
    previews: tuple[str, ...] = ()

    @property
    def upstream_name(self) -> str:
        """The model name sent upstream."""
        return self.upstream or self.id


def redact(secret: str | None) -> str:
    """A recognisable but harmless form of a secret: ``sk-…f00d``.

    Only a long secret shows its ends: seven characters of a nine-character
    key would be most of it, so anything shorter than 24 is just ``…``.
    """
    if not secret:
        return ""
    if len(secret) < 24:
        return "…"
    return f"{secret[:3]}…{secret[-4:]}"


@attrs.define(eq=False)
class Credential:
    """One account or key a provider can use.

    ``data`` is the auth file's JSON (written back after a refresh, unknown
    fields preserved); ``secret`` is the key or access token sent upstream.
    """

    id: str
    provider: str
    secret: str = attrs.field(repr=False)
    kind: Literal["api-key", "oauth"] = "api-key"
    label: str = ""
    refresh_token: str | None = attrs.field(default=None, repr=False)
    expires_at: float | None = None  # unix seconds
    base_url: str | None = None
    proxy_url: str | None = None
    priority: int = 0
    weight: int = 1
    headers: dict[str, str] = attrs.field(factory=dict, repr=False)
    models: list[str] | None = None  # restrict to these client model ids
    excluded_models: list[str] = attrs.field(factory=list)
    disabled: bool = False
    #: Why it is disabled (kept in the auth file as ``disabled_reason``).
    disabled_reason: str = ""
    #: What the upstream last said about this account's usage windows (``observe_response``); in
    #: ``Pool.describe``, not persisted.
    quota: dict[str, Any] = attrs.field(factory=dict)
    path: Path | None = None
    data: dict[str, Any] = attrs.field(factory=dict, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.label:
            self.label = redact(self.secret)

    @property
    def secrets(self) -> list[str]:
        """Every secret value this credential holds (for log redaction)."""
        return [s for s in (self.secret, self.refresh_token) if s]

    def record_disabled(self, reason: str) -> None:
        """Keep the disabled state in ``data`` (CLIProxyAPI's ``disabled``, and ``disabled_reason``).

        A credential that shares its file with others (one project of a
        login) overrides this to record only itself.
        """
        self.data["disabled"] = True
        self.data["disabled_reason"] = reason


@attrs.define
class UpstreamRequest:
    """What to send to the backend for one attempt."""

    url: str
    body: bytes
    headers: dict[str, str] = attrs.field(factory=dict, repr=False)
    method: str = "POST"
    stream: bool = False
    #: State for this attempt's stream: the core copies it into ``StreamState.extra``
    #: (a provider that rewrote names on the way up finds its map there on the way back).
    context: dict[str, Any] = attrs.field(factory=dict, repr=False)
    #: For upstreams that wrap their dialect's answer in an envelope: applied to a
    #: complete success body and to every SSE ``data:`` payload before a codec or a
    #: pass-through client sees it (see :mod:`polyrelay.unwrap`).  None: no envelope.
    unwrap: Callable[[bytes], bytes] | None = attrs.field(default=None, repr=False)


@attrs.define
class Verdict:
    """How the core should treat an upstream answer.

    ``action``: ``"ok"``; ``"next"`` (cool down per ``scope``/``cooldown``
    and try another credential); ``"refresh"`` (refresh this credential once
    and retry it); ``"fail"`` (a request fault: return the error, cool
    nothing).  ``cooldown`` None means the core's default for the status.
    ``repeat_cooldown``: used instead of ``cooldown`` when the same scope
    fails the same way within ``repeat_window`` seconds of its last
    cooldown ending (a quota spent again right after its window reset means
    a longer window is spent).
    ``disable`` takes the credential out of rotation until a user acts
    (a revoked subscription, an ineligible project); on a ``"refresh"``
    verdict it applies only when the credential cannot be refreshed (an
    API key) or is refused again after a refresh.
    """

    action: Literal["ok", "next", "refresh", "fail"]
    error: ir.ErrorInfo | None = None
    scope: Literal["model", "credential"] = "model"
    cooldown: float | None = None
    repeat_cooldown: float | None = None
    repeat_window: float = 0.0
    #: Shown as the cooldown's reason (default: the error's kind).
    reason: str = ""
    #: Disable the credential for good with this reason (persisted in its auth file).
    disable: str = ""


@attrs.frozen
class ClientRequest:
    """A client's request as the core parsed it; handed to ``translate_request``.

    Frozen: plugins and the core share it.  Each attempt gets its own copy
    (:meth:`for_attempt`) carrying the routed ``upstream_model``; the copies
    share one decode memo, so the body is decoded once per request.
    """

    dialect: str  # the client's dialect
    body: bytes = attrs.field(repr=False)  # raw body as received
    json: dict[str, Any] = attrs.field(repr=False)
    model: str  # what the client asked for
    upstream_model: str = ""  # after routing
    stream: bool = False
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    query: Mapping[str, str] = attrs.field(factory=dict)
    # Gemini clients choose SSE or a streamed JSON array by ``alt=sse``.
    sse: bool = True
    _memo: dict[str, Any] = attrs.field(factory=dict, repr=False, eq=False)
    #: The client's dialect object, resolved once from ``dialect``.
    codec: Dialect = attrs.field(init=False, repr=False, eq=False)

    @codec.default
    def _codec(self) -> Dialect:
        from polyrelay.dialects import get_dialect  # the codecs import this module

        return get_dialect(self.dialect)

    def for_attempt(self, upstream_model: str, renamed: bool = False) -> ClientRequest:
        """This request as one attempt sends it: routed to ``upstream_model``.

        ``renamed``: the answer names ``upstream_model`` instead of the client's model (a model
        that serves in another's place, such as a preview sibling, says which one answered).
        """
        if renamed:
            return attrs.evolve(self, upstream_model=upstream_model, model=upstream_model)
        return attrs.evolve(self, upstream_model=upstream_model)

    def without_body(self) -> ClientRequest:
        """A copy that no longer holds the raw and parsed body (a committed stream can live for minutes)."""
        return attrs.evolve(self, body=b"", json={})

    def decoded(self) -> ir.Request:
        """The request in the internal representation (decoded once per request)."""
        request: ir.Request | None = self._memo.get("ir")
        if request is None:
            request = self.codec.decode_request(self.json)
            request.model = self.model
            request.stream = self.stream
            self._memo["ir"] = request
        return request


@attrs.define
class StreamState:
    """Per-stream translation state, handed to every ``translate_chunk`` call."""

    client: ClientRequest
    provider: Provider
    credential: Credential
    decoder: StreamDecoder | PassthroughDecoder
    #: True when upstream frames are forwarded to the client unchanged.
    passthrough: bool
    #: Free for a provider's own per-stream state.
    extra: dict[str, Any] = attrs.field(factory=dict)

    @property
    def finished(self) -> bool:
        """The upstream sent its own terminal event."""
        return self.decoder.finished


Refresher = Callable[["Credential", "aiohttp.ClientSession", "Provider"], Awaitable[None]]
#: Counts a request's input tokens upstream (``request.upstream_model`` is set); None: it cannot.
TokenCounter = Callable[["ClientRequest", "Credential", "aiohttp.ClientSession", "Provider"], Awaitable["int | None"]]


@attrs.define(eq=False)
class Provider:
    """A backend a plugin registers.

    ``dialect`` is the wire format the upstream speaks.  ``urls`` holds every
    upstream address the provider uses (``"api"`` at least; OAuth endpoints
    too) so config can redirect each one.  ``refresh`` is the only place a
    provider does I/O for credentials: an async callable that renews
    ``credential.secret`` in place.
    """

    name: str
    dialect: str
    urls: dict[str, str]
    models: list[ModelInfo] = attrs.field(factory=list)
    credential_types: tuple[str, ...] = ()
    #: The upstream always streams; non-stream clients are served by aggregation.
    stream_only: bool = False
    #: Same-dialect clients are forwarded byte-for-byte (model name patched).
    passthrough: bool = True
    refresh: Refresher | None = None
    #: Upstream token counting for the count routes (None: the core's local estimate).
    count_tokens: TokenCounter | None = None
    #: Refresh OAuth tokens this many seconds before they expire.
    refresh_lead: float = 300.0
    headers: dict[str, str] = attrs.field(factory=dict)
    #: Set by the core: the plugin object that registered this provider.
    plugin: object = attrs.field(default=None, repr=False)

    def url(self, name: str = "api", credential: Credential | None = None) -> str:
        """An upstream address; a credential's ``base_url`` overrides ``api``."""
        if name == "api" and credential is not None and credential.base_url:
            return credential.base_url.rstrip("/")
        return self.urls[name].rstrip("/")


if TYPE_CHECKING:
    from polyrelay.passthrough import RawFrame

#: What ``translate_chunk`` returns: internal events, or on a pass-through stream raw frames.  A
#: string so that this module need not import the pass-through module (which imports the codecs,
#: which import this module); type checkers read it as the union it names.
StreamItem: TypeAlias = "ir.Event | RawFrame"

__all__ = [
    "ClientRequest",
    "Credential",
    "ModelInfo",
    "Provider",
    "Refresher",
    "StreamItem",
    "StreamState",
    "TokenCounter",
    "UpstreamRequest",
    "Verdict",
    "redact",
]
