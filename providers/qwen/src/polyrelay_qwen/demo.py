"""The qwen provider's part of ``polyrelay serve --demo``: its DashScope simulator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyrelay.demo import DemoBackend, backend_for

if TYPE_CHECKING:
    from polyrelay import ProviderPlugin
    from polyrelay.testing.simulator import Recorded, Reply, Simulator


def _simulator(keys: set[str]) -> Simulator:
    from polyrelay_qwen import MODELS
    from polyrelay_qwen.simulator import DashScopeSimulator

    return DashScopeSimulator(keys=keys, models=set(MODELS))


def _rate_limit(recorded: Recorded, seconds: int) -> Reply:
    from polyrelay_qwen.simulator import rate_limit_reply

    return rate_limit_reply(retry_after=seconds)


def _tool_call(recorded: Recorded, name: str, arguments: dict[str, Any]) -> Reply:
    from polyrelay_qwen.simulator import tool_call_reply

    body = recorded.json()
    return tool_call_reply(body["model"], name, arguments, bool(body.get("stream")))


def demo_backend(plugin: ProviderPlugin) -> DemoBackend:
    """The simulator behind two demo keys, configured through the plugin's API-key list."""
    return backend_for(plugin, simulator=_simulator, rate_limit=_rate_limit, tool_call=_tool_call)
