"""The codex provider's part of ``polyrelay serve --demo``: its Responses API simulator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polyrelay import hookimpl, ir
from polyrelay.demo import DemoBackend, api_key_config

if TYPE_CHECKING:
    from polyrelay.testing.simulator import Recorded, Reply, Simulator


def _simulator(keys: set[str]) -> Simulator:
    from polyrelay_codex import MODELS
    from polyrelay_codex.simulator import ResponsesSimulator

    return ResponsesSimulator(keys=keys, models=set(MODELS))


def _rate_limit(recorded: Recorded, seconds: int) -> Reply:
    from polyrelay_codex.simulator import rate_limit_reply

    return rate_limit_reply(seconds=seconds, model=recorded.json()["model"])


def _tool_call(recorded: Recorded, name: str, arguments: dict[str, Any]) -> Reply:
    from polyrelay_codex.simulator import function_call_reply

    body = recorded.json()
    return function_call_reply(name, arguments, bool(body.get("stream")), model=body["model"])


@hookimpl
def demo_backends() -> list[DemoBackend]:
    """The Responses API simulator behind two demo keys."""
    from polyrelay_codex import MODELS, NAME, SECTION

    return [DemoBackend(provider=NAME, dialect=ir.OPENAI_RESPONSES, models=MODELS, simulator=_simulator,
                        config=api_key_config(SECTION), rate_limit=_rate_limit, tool_call=_tool_call)]
