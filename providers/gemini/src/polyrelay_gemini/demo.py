"""The gemini provider's part of ``polyrelay serve --demo``: its Gemini API simulator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyrelay.demo import DemoBackend, backend_for

if TYPE_CHECKING:
    from polyrelay import ProviderPlugin
    from polyrelay.testing.simulator import Recorded, Reply, Simulator


def _model(recorded: Recorded) -> str:
    return recorded.path.rsplit("/", 1)[-1].partition(":")[0]


def _simulator(keys: set[str]) -> Simulator:
    from polyrelay_gemini import MODELS
    from polyrelay_gemini.simulator import GeminiSimulator

    return GeminiSimulator(keys=keys, models=set(MODELS))


def _rate_limit(recorded: Recorded, seconds: int) -> Reply:
    from polyrelay_gemini.simulator import rate_limit_reply

    return rate_limit_reply(retry_delay=seconds, model=_model(recorded))


def _tool_call(recorded: Recorded, name: str, arguments: dict[str, Any]) -> Reply:
    from polyrelay_gemini.simulator import function_call_reply

    stream = recorded.path.endswith(":streamGenerateContent")
    return function_call_reply(_model(recorded), name, arguments, stream, sse=recorded.query.get("alt") == "sse")


def demo_backend(plugin: ProviderPlugin) -> DemoBackend:
    """The simulator behind two demo keys, configured through the plugin's API-key list."""
    return backend_for(plugin, simulator=_simulator, rate_limit=_rate_limit, tool_call=_tool_call)
