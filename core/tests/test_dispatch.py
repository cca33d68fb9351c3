"""Dispatch apart from HTTP: results not responses, frozen requests, plugins' objects left alone."""

from __future__ import annotations

import attrs
import pytest

from polyrelay import ModelInfo, Provider, hookimpl, ir, jsonutil
from polyrelay.gateway import Gateway
from polyrelay.results import Complete, Failure, Stream
from polyrelay.server import load
from polyrelay.testing import FaultUpstream, Reply
from polyrelay.testing.faults import complete_body
from polyrelay.types import ClientRequest, Credential


class RecordingPlugin:
    """Two providers of one model with different upstream names; records what each attempt was handed."""

    def __init__(self, base: str) -> None:
        self.providers = [
            Provider(name=f"rec-{n}", dialect=ir.OPENAI_CHAT, urls={"api": base, "extra": "http://plugin.example"},
                     models=[ModelInfo("shared", upstream=f"upstream-{n}")], passthrough=False)
            for n in ("a", "b")
        ]
        self.seen: list[ClientRequest] = []

    @hookimpl
    def register_providers(self) -> list[Provider]:
        return self.providers

    @hookimpl
    def config_credentials(self, provider: Provider) -> list[Credential]:
        return [Credential(id=f"{provider.name}-key", provider=provider.name, secret=f"sk-{provider.name}")]

    @hookimpl
    def translate_request(self, provider: Provider, request: ClientRequest, credential: Credential) -> None:
        self.seen.append(request)
        return None  # the core's default builds it


@pytest.fixture
async def fault():
    async with FaultUpstream() as upstream:
        yield upstream


def _client(model: str = "shared", stream: bool = False) -> ClientRequest:
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    return ClientRequest(dialect=ir.OPENAI_CHAT, body=jsonutil.dumps(body), json=body, model=model, stream=stream)


async def test_serve_returns_results_and_each_attempt_carries_its_own_request(fault):
    plugin = RecordingPlugin(fault.base_url)
    config, pm = load(config_text="upstream-urls: {rec-a: {extra: http://override.example}}\nrequest-retry: 0\n",
                      environ={}, extra_plugins=[("rec", plugin)])
    gateway = Gateway(config, pm)
    try:
        fault.push(Reply.json({"error": {"message": "busy", "type": "server_error"}}, status=503),
                   Reply.json(complete_body(ir.OPENAI_CHAT, "upstream-b")))
        client = _client()
        result = await gateway.serve(client)
        assert isinstance(result, Complete), result
        assert b"Hello from the fault upstream." in result.body
        # One request, two attempts: each saw its own routed model; the client's request is unchanged.
        assert sorted(r.upstream_model for r in plugin.seen) == ["upstream-a", "upstream-b"]
        assert client.upstream_model == ""
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            client.model = "other"  # type: ignore[misc]
        # The config override reached the core's copy, never the plugin's own Provider objects.
        assert [p.urls["extra"] for p in plugin.providers] == ["http://plugin.example"] * 2
        assert all(p.plugin is None for p in plugin.providers)
        served = {b.provider.name: b.provider for b in gateway.bindings}
        assert served["rec-a"].urls["extra"] == "http://override.example"

        missing = await gateway.serve(_client("no-such-model"))
        assert isinstance(missing, Failure) and missing.error.code == "model_not_found"

        streamed = await gateway.serve(_client(stream=True))
        assert isinstance(streamed, Stream)
        body = b"".join([chunk async for chunk in streamed.frames])
        assert body.endswith(b"data: [DONE]\n\n")
    finally:
        await gateway.aclose()

