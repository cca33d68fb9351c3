"""Tests every provider plugin inherits.

Subclass :class:`ProviderConformance` in the plugin's test suite, set
``provider_name``, ``distribution``, ``model`` and ``simulator_fixture``
(the name of your fixture that yields a started simulator of the upstream),
and implement :meth:`config_text` (the config that points the provider at
it with two keys), :meth:`rate_limit_reply` and :meth:`tool_call_reply`.
Every test then runs against the real gateway over loopback HTTP, in each
of the four client dialects.

The suite needs only ``pip install polyrelay[testing]``: its async tests
carry their own ``asyncio`` mark, so it runs under pytest-asyncio's strict
mode as well as its auto mode, and its fixtures come from the
``polyrelay.testing.fixtures`` pytest plugin (all prefixed ``polyrelay_``).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import aiohttp
import pytest

from polyrelay import ir
from polyrelay.plugins import ENTRY_POINT_GROUP, collect_providers, make_plugin_manager, plugin_distributions
from polyrelay.server import load
from polyrelay.testing.clients import TOOL_STOP, ask, tool_calls_of, tool_round_trip
from polyrelay.testing.gateway import run_gateway
from polyrelay.testing.simulator import Reply, Simulator

ALL_DIALECTS = list(ir.DIALECTS)


class ProviderConformance:
    """The contract a provider must meet; subclass it (its name must start with ``Test``)."""

    provider_name: str = ""
    #: The distribution that installs the provider (``polyrelay plugins`` must name it).
    distribution: str = ""
    model: str = ""
    #: Text the simulator's default answer contains.
    expected_text: str = ""

    #: The fixture (of the provider's own tests) that yields a started simulator of the upstream.
    simulator_fixture: str = ""

    @pytest.fixture
    def simulator(self, request: pytest.FixtureRequest) -> Simulator:
        """The provider's started simulator, from the fixture :attr:`simulator_fixture` names."""
        if not self.simulator_fixture:
            pytest.fail("set `simulator_fixture` on the conformance class")
        simulator = request.getfixturevalue(self.simulator_fixture)
        assert isinstance(simulator, Simulator), f"{self.simulator_fixture} must yield a started Simulator"
        return simulator

    def config_text(self, simulator: Simulator) -> str:
        """Config YAML pointing the provider at ``simulator`` with two credentials."""
        raise NotImplementedError

    def rate_limit_reply(self) -> Reply:
        """The upstream's own 429 answer (with its retry hint)."""
        raise NotImplementedError

    def tool_call_reply(self, name: str, arguments: dict[str, Any], stream: bool) -> Reply:
        """The upstream's answer calling tool ``name`` with ``arguments`` (streamed or not)."""
        raise NotImplementedError

    @pytest.mark.asyncio
    async def test_registered_through_entry_point(self, simulator: Simulator) -> None:
        """Installing the distribution is enough for the gateway to find the provider."""
        config, pm = load(config_text=self.config_text(simulator), environ={})
        names = [p.name for p in collect_providers(pm, config)]
        assert self.provider_name in names

    def test_plugins_command_names_the_distribution(self) -> None:
        """``polyrelay plugins`` says which installed distribution serves the provider."""
        if not self.distribution:
            pytest.fail("set `distribution` on the conformance class")
        rows = plugin_distributions(make_plugin_manager(environ={}))
        plugin = next(name for name, dist, _ in rows if dist == self.distribution)
        _, pm = load(config_text="", environ={})
        assert pm.get_plugin(plugin) is not None

    def test_entry_point_name_is_the_import_name(self) -> None:
        """The name ``polyrelay plugins`` prints (and the allow/block lists take) is the module it loads."""
        (ep,) = [ep for ep in entry_points(group=ENTRY_POINT_GROUP)
                 if ep.dist is not None and ep.dist.name == self.distribution]
        assert ep.name == ep.module, f"entry point {ep.name} = {ep.value}: name it {ep.module}"

    @pytest.mark.asyncio
    async def test_model_is_listed(self, simulator: Simulator, polyrelay_http: aiohttp.ClientSession) -> None:
        """``GET /v1/models`` shows the provider's model."""
        async with run_gateway(self.config_text(simulator)) as gateway, \
                polyrelay_http.get(f"{gateway.url}/v1/models") as r:
            ids = [m["id"] for m in (await r.json())["data"]]
        assert self.model in ids

    @pytest.mark.parametrize("dialect", ALL_DIALECTS)
    @pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
    @pytest.mark.asyncio
    async def test_answers_every_dialect(
        self, simulator: Simulator, polyrelay_http: aiohttp.ClientSession, dialect: str, stream: bool
    ) -> None:
        """A client of any dialect gets the upstream's text and its own terminal event."""
        async with run_gateway(self.config_text(simulator)) as gateway:
            answer = await ask(polyrelay_http, gateway.url, dialect, self.model, "Say hello.", stream=stream)
        assert answer.status == 200, answer.body
        assert self.expected_text in answer.text
        assert answer.terminal and not answer.stream_error

    @pytest.mark.asyncio
    async def test_rotates_on_rate_limit(self, simulator: Simulator, polyrelay_http: aiohttp.ClientSession) -> None:
        """An upstream 429 moves the request to the other credential; the client never sees it."""
        async with run_gateway(self.config_text(simulator) + "\nrequest-retry: 0\n") as gateway:
            simulator.push(self.rate_limit_reply())
            answer = await ask(polyrelay_http, gateway.url, ir.OPENAI_CHAT, self.model, stream=False)
        assert answer.status == 200, answer.body
        assert len(simulator.requests) == 2
        keys = {_auth_of(r.headers) for r in simulator.requests}
        assert len(keys) == 2, "the retry must use the other credential"

    @pytest.mark.parametrize("dialect", ALL_DIALECTS)
    @pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
    @pytest.mark.asyncio
    async def test_upstream_tool_calls_reach_every_dialect(
        self, simulator: Simulator, polyrelay_http: aiohttp.ClientSession, dialect: str, stream: bool
    ) -> None:
        """The upstream's tool call arrives whole in the client's own shape, with its tool stop reason."""
        path, headers, body = tool_round_trip(dialect, self.model)
        if dialect == ir.GEMINI and stream:
            path = path.replace(":generateContent", ":streamGenerateContent?alt=sse")
        elif dialect != ir.GEMINI:
            body["stream"] = stream
        simulator.push(self.tool_call_reply("read_file", {"path": "/etc/passwd"}, stream))
        async with run_gateway(self.config_text(simulator)) as gateway, \
                polyrelay_http.post(gateway.url + path, json=body, headers=headers) as response:
            raw = await response.read()
        assert response.status == 200, raw
        assert tool_calls_of(dialect, stream, raw) == ([("read_file", {"path": "/etc/passwd"})], TOOL_STOP[dialect])


def _auth_of(headers: dict[str, str]) -> str:
    for name in ("authorization", "x-api-key", "x-goog-api-key"):
        if name in headers:
            return headers[name]
    return ""
