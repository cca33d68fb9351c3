"""An upstream of any dialect, at any path, for tests of what reaches an upstream.

:class:`DialectUpstream` answers every POST with a short valid reply that the
dialect's own codec encodes (complete, or SSE frames when the request asks to
stream), and records the raw path, so a test can assert exactly which URL
the gateway built.  :func:`dialect_provider` is a plugin that puts a provider
of that dialect in front of it, configured by a ``*-api-key`` list like the
real providers.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from polyrelay import ir, jsonutil
from polyrelay.aggregate import response_events
from polyrelay.apikeys import ProviderPlugin
from polyrelay.dialects import get_dialect
from polyrelay.testing.simulator import Recorded, Reply, Simulator


class DialectUpstream(Simulator):
    """Answers ``POST /<anything>`` in ``dialect`` with :attr:`text`."""

    def __init__(self, dialect: str, text: str = "Hello from the dialect upstream.") -> None:
        super().__init__()
        self.dialect = dialect
        self.text = text
        #: The raw (still percent-encoded) path of each request without its query, in order.
        self.raw_paths: list[str] = []

    def routes(self) -> list[web.RouteDef]:
        """Every path: what the gateway asks for is what the test checks."""
        return [web.post("/{tail:.*}", self._record_raw)]

    async def _record_raw(self, request: web.Request) -> web.StreamResponse:
        self.raw_paths.append(request.raw_path.partition("?")[0])
        return await self.handle(request)

    def default_reply(self, recorded: Recorded) -> Reply:
        """A one-text-block answer, streamed when the path or the body asks for a stream."""
        try:
            body = recorded.json()
        except ValueError:
            body = {}
        model = str(body.get("model") or "upstream-model") if isinstance(body, dict) else "upstream-model"
        response = ir.Response(id="up-1", model=model, parts=[ir.Text(self.text)],
                               usage=ir.Usage(input_tokens=3, output_tokens=2))
        codec = get_dialect(self.dialect)
        stream = recorded.path.endswith(":streamGenerateContent") or (isinstance(body, dict) and body.get("stream"))
        if not stream:
            return Reply.json(codec.encode_response(response))
        encoder = codec.stream_encoder(ir.Request(model=model, stream=True), sse=True)
        frames = [encoder.encode(event) for event in response_events(response)]
        return Reply.sse([f for f in [*frames, encoder.finish()] if f])


def dialect_provider(name: str, dialect: str, models: list[str]) -> tuple[str, Any]:
    """An ``extra_plugins`` entry: provider ``name`` speaking ``dialect``, keys in ``<name>-api-key``.

    The API base is each key's ``base-url`` (point it at a :class:`DialectUpstream`).
    """
    plugin_class = type(f"{name.title()}Plugin", (ProviderPlugin,), {
        "name": name, "dialect": dialect, "urls": {"api": "http://127.0.0.1:9"},
        "models": tuple(models), "api_key_section": f"{name}-api-key",
    })
    return name, plugin_class()


def key_config(name: str, upstream: DialectUpstream, keys: list[str], base_path: str = "") -> str:
    """Config YAML for :func:`dialect_provider` ``name`` with ``keys`` in front of ``upstream``."""
    lines = [f"{name}-api-key:"]
    for key in keys:
        lines += [f"  - api-key: {jsonutil.dumps(key).decode()}", f"    base-url: {upstream.base_url}{base_path}"]
    return "\n".join(lines) + "\n"
