"""Tools for testing polyrelay and its plugins against real loopback servers.

* :mod:`polyrelay.testing.simulator` — the fake-upstream base class;
* :mod:`polyrelay.testing.openai_chat` — an OpenAI-compatible upstream;
* :func:`run_gateway` — the real gateway on an ephemeral loopback port;
* :mod:`polyrelay.testing.conformance` — tests a provider plugin inherits;
* :func:`plugin_of` — loose hook functions as one plugin object;
* pytest fixtures (``polyrelay_http``, ``polyrelay_chat_upstream``) registered as a pytest plugin.
"""

from polyrelay.testing.gateway import RunningGateway, run_gateway
from polyrelay.testing.openai_chat import OpenAIChatSimulator
from polyrelay.testing.plugin import plugin_of
from polyrelay.testing.simulator import Recorded, Reply, Simulator

__all__ = ["OpenAIChatSimulator", "Recorded", "Reply", "RunningGateway", "Simulator", "plugin_of", "run_gateway"]
