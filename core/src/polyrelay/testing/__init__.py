"""Tools for testing polyrelay and its plugins against real loopback servers.

* :mod:`polyrelay.testing.simulator` — the fake-upstream base class;
* :mod:`polyrelay.testing.openai_chat` — an OpenAI-compatible upstream;
* :mod:`polyrelay.testing.faults` — :class:`FaultUpstream`, every dialect's endpoint with
  hangs, drips, garbage and in-stream errors chosen per request;
* :func:`run_gateway` — the real gateway on an ephemeral loopback port;
* :mod:`polyrelay.testing.conformance` — tests a provider plugin inherits;
* :func:`plugin_of` — loose hook functions as one plugin object;
* pytest fixtures (``polyrelay_http``, ``polyrelay_chat_upstream``) registered as a pytest plugin.
"""

from polyrelay.testing.faults import FaultUpstream, fault_model, fault_plugin
from polyrelay.testing.gateway import RunningGateway, run_gateway
from polyrelay.testing.openai_chat import OpenAIChatSimulator
from polyrelay.testing.plugin import plugin_of
from polyrelay.testing.simulator import Recorded, Reply, Simulator

__all__ = [
    "FaultUpstream",
    "OpenAIChatSimulator",
    "Recorded",
    "Reply",
    "RunningGateway",
    "Simulator",
    "fault_model",
    "fault_plugin",
    "plugin_of",
    "run_gateway",
]
