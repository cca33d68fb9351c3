"""The core's own hook implementations: what a provider gets for free.

A provider that speaks a public dialect with an API key needs none of its
own: these build the request (pass-through or codec translation, the
dialect's path and auth header), decode the stream with the dialect's codec
and classify errors by status, ``Retry-After`` and the dialect's body hints.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import cast

import attrs
import pluggy

from polyrelay import ir, jsonutil
from polyrelay.dialects import Dialect, DialectError, get_dialect
from polyrelay.passthrough import patch_request_model
from polyrelay.types import ClientRequest, Credential, Provider, StreamItem, StreamState, UpstreamRequest, Verdict

hookimpl = pluggy.HookimplMarker("polyrelay")

#: Request faults: the request itself is wrong, so no credential is to blame.
REQUEST_FAULTS = frozenset({400, 409, 413, 422})
#: Error codes (OpenAI, DashScope) meaning the whole account is out of credit,
#: for every model and until someone pays: a short per-model back-off would
#: only burn requests.
ACCOUNT_QUOTA_CODES = frozenset({"insufficient_quota", "quota_exceeded"})
ACCOUNT_QUOTA_COOLDOWN = 30 * 60.0


def upstream_url(provider: Provider, credential: Credential, model: str, stream: bool) -> str:
    """The standard endpoint of ``provider.dialect`` under the provider's API base.

    The dialect builds the path; a model in it is one percent-encoded segment.
    """
    return _endpoint(provider, get_dialect(provider.dialect), credential, model, stream)


def _endpoint(provider: Provider, upstream: Dialect, credential: Credential, model: str, stream: bool) -> str:
    return provider.url("api", credential) + upstream.upstream_path(model, stream)


def is_passthrough(provider: Provider, request: ClientRequest) -> bool:
    """Whether the client's body can go upstream as it is (model aside)."""
    return (
        provider.passthrough
        and request.dialect == provider.dialect
        and request.codec.passes_through(request.stream, request.sse)
    )


def upstream_body(provider: Provider, request: ClientRequest, stream: bool) -> bytes:
    """The request body for an upstream of ``provider.dialect``.

    Same dialect: the client's bytes, with only the model renamed (and the
    stream flag set when the upstream only streams).  Otherwise: decode with
    the client's codec, encode with the upstream's.
    """
    if is_passthrough(provider, request):
        body = request.body
        if not request.codec.model_in_body:
            return body  # the model travels in the URL
        wants_stream_flag = stream and request.json.get("stream") is not True
        if request.json.get("model") != request.upstream_model and not wants_stream_flag:
            patched = patch_request_model(body, request.json.get("model"), request.upstream_model)
            if patched is not None:
                return patched
        if request.json.get("model") == request.upstream_model and not wants_stream_flag:
            return body
        data = dict(request.json, model=request.upstream_model)
        if stream:
            data["stream"] = True
        return jsonutil.dumps(data)
    decoded = attrs.evolve(request.decoded(), model=request.upstream_model, stream=stream)
    encoded = get_dialect(provider.dialect).encode_request(decoded)
    try:
        return jsonutil.dumps(encoded)
    except (TypeError, ValueError) as exc:
        # A value the client sent that no encoder can write (a count past 64 bits): its request's fault.
        raise DialectError(f"the request cannot be translated for the upstream: {exc}") from None


@hookimpl(trylast=True)
def translate_request(provider: Provider, request: ClientRequest, credential: Credential) -> UpstreamRequest:
    """Default request: the dialect's endpoint and auth header, body passed through or translated."""
    stream = request.stream or provider.stream_only
    headers = {"content-type": "application/json", "accept-encoding": "gzip, deflate"}
    headers.update(provider.headers)
    upstream = get_dialect(provider.dialect)
    if request.dialect == provider.dialect:
        for name in upstream.forwarded_headers:  # beta flags and the API version the client chose
            if name in request.headers:
                headers[name] = request.headers[name]
    headers.update(upstream.auth_headers(credential.secret))
    headers.update(credential.headers)
    if stream:
        headers["accept"] = "text/event-stream"
    return UpstreamRequest(
        url=_endpoint(provider, upstream, credential, request.upstream_model, stream),
        body=upstream_body(provider, request, stream),
        headers=headers,
        stream=stream,
    )


@hookimpl(trylast=True)
def translate_chunk(provider: Provider, stream: StreamState, data: bytes) -> list[StreamItem]:
    """Default chunk translation: the stream's decoder (codec or pass-through framer)."""
    return cast("list[StreamItem]", stream.decoder.feed(data))  # either decoder's items are stream items


def retry_after_header(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@hookimpl(trylast=True)
def classify_response(
    provider: Provider, status: int, headers: Mapping[str, str], body: bytes, error: ir.ErrorInfo | None = None
) -> Verdict:
    """Default verdicts by status class (see docs/architecture.md, "Cooldowns").

    ``error`` is the answer already decoded (an in-stream error keeps its
    retry hint that way); without it ``body`` is decoded here.
    """
    if error is None:
        error = get_dialect(provider.dialect).decode_error(status, body)
    hint = retry_after_header(headers)
    if hint is not None:
        error = attrs.evolve(error, retry_after=hint)
    if status in REQUEST_FAULTS or (status >= 500 and error.kind == "invalid_request"):
        # A 5xx the upstream itself blames on the request: no credential is at fault.
        return Verdict("fail", error)
    if status == 401:
        return Verdict("refresh", error, scope="credential")
    if status in (403, 429) and error.code in ACCOUNT_QUOTA_CODES:
        return Verdict("next", error, scope="credential", cooldown=error.retry_after or ACCOUNT_QUOTA_COOLDOWN)
    if status in (402, 403):
        return Verdict("next", error, scope="credential", cooldown=error.retry_after)
    return Verdict("next", error, scope="model", cooldown=error.retry_after)


@hookimpl(trylast=True)
def select_credential(
    provider: Provider, model: str, candidates: list[Credential], request: ClientRequest
) -> Credential | None:
    """No opinion: the configured strategy chooses."""
    return None

