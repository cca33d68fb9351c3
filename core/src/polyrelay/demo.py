"""``polyrelay serve --demo``: the gateway in front of every installed provider's simulator.

Each provider contributes a :class:`DemoBackend` through the
``demo_backends`` hook: a factory for its simulator (which speaks the
upstream's exact wire protocol), the config that points the provider at it,
and its own rate-limit and tool-call answers.  The core starts every
simulator in this process on loopback, with two keys each, and adds what a
scripted simulator does not do by itself:

* a request that offers tools (and is not already answering one) gets a
  tool call, so a client's tool loop runs end to end;
* every :data:`LIMIT_EVERY`-th request on a provider's first key gets that
  upstream's own 429, so the key cools down and the log shows the gateway
  moving to the other one.  The second key is never limited, so clients do
  not see the limit.

Nothing here opens a connection off this machine.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TextIO

import attrs
import pluggy
from ruamel.yaml import YAML

from polyrelay import ir
from polyrelay.clientenv import client_setup
from polyrelay.config import ConfigError, load_config
from polyrelay.dialects import DialectError, get_dialect
from polyrelay.preflight import is_loopback

if TYPE_CHECKING:  # the testing package imports the gateway, which imports the hook specs
    from polyrelay.apikeys import ProviderPlugin
    from polyrelay.testing.simulator import Recorded, Reply, Simulator

log = logging.getLogger("polyrelay.demo")

#: The client key the demo gateway accepts (printed with the client set-up).
CLIENT_KEY = "polyrelay-demo-key"
#: Every n-th request on a provider's first key is refused with a rate limit.
LIMIT_EVERY = 4
#: The retry hint of that rate limit, in seconds.
LIMIT_SECONDS = 5

#: Words in the user's request that make the demo model use a tool.
_TOOL_WORDS = re.compile(r"(?i)\b(read|file|files|list|run|tool|ls|cat|open)\b")
#: Tool names a demo call prefers, in order: a harmless read, else a shell that runs ``ls``.
_PREFERRED_TOOLS = ("read", "read_file", "readfile", "view", "cat", "exec_command", "shell", "run_shell_command")


@attrs.frozen
class DemoBackend:
    """One provider's contribution to the demo (returned by the ``demo_backends`` hook).

    Every field is a factory or a plain function: the hook itself starts
    nothing.
    """

    #: The provider this simulator stands in for.
    provider: str
    #: The wire dialect the simulator speaks (one of :data:`polyrelay.ir.DIALECTS`).
    dialect: str
    #: Models to show in the printed client set-up (the first is the example).
    models: tuple[str, ...]
    #: A new, unstarted simulator accepting exactly these keys.
    simulator: Callable[[set[str]], Simulator]
    #: Top-level config keys pointing the provider at a started simulator with these keys.
    config: Callable[[Any, list[str]], dict[str, Any]]
    #: The upstream's own rate-limit answer to this request, with a retry hint of ``seconds``.
    rate_limit: Callable[[Recorded, int], Reply]
    #: The upstream's own answer to this request calling tool ``name`` with ``arguments``.
    tool_call: Callable[[Recorded, str, dict[str, Any]], Reply]


def api_key_config(section: str) -> Callable[[Any, list[str]], dict[str, Any]]:
    """The :attr:`DemoBackend.config` of a provider configured by a ``*-api-key`` list."""

    def config(simulator: Any, keys: list[str]) -> dict[str, Any]:
        return {section: [{"api-key": key, "base-url": simulator.api_base} for key in keys]}

    return config


def backend_for(
    plugin: ProviderPlugin,
    simulator: Callable[[set[str]], Simulator],
    rate_limit: Callable[[Recorded, int], Reply],
    tool_call: Callable[[Recorded, str, dict[str, Any]], Reply],
) -> DemoBackend:
    """The demo backend of a :class:`~polyrelay.apikeys.ProviderPlugin` configured by its API-key list.

    Name, dialect, models and config come from the plugin's class attributes.
    """
    if plugin.api_key_section is None:
        raise ValueError(f"{plugin!r} has no api_key_section; build its DemoBackend with its own config")
    return DemoBackend(provider=plugin.name, dialect=plugin.dialect, models=tuple(plugin.models),
                       simulator=simulator, config=api_key_config(plugin.api_key_section),
                       rate_limit=rate_limit, tool_call=tool_call)


def demo_keys(provider: str) -> list[str]:
    """The two upstream keys a provider's simulator accepts in the demo."""
    return [f"demo-{provider}-key-a", f"demo-{provider}-key-b"]


# -- what the simulators do in the demo ------------------------------------------


def decode(dialect: str, body: Any) -> ir.Request | None:
    """The upstream request in the internal representation (None when it cannot be read)."""
    try:
        return get_dialect(dialect).decode_request(body)
    except (DialectError, ValueError, TypeError, KeyError):
        return None


def offered_tool(request: ir.Request) -> ir.Tool | None:
    """The tool to call for this request, or None when text is the answer.

    A call is made when the request offers function tools, lets the model
    use them, and the user's last words ask for something a tool does
    ("read the README", "list the files"); coding CLIs offer tools on every
    turn, and "say hi" should still get a plain answer.
    """
    tools = [t for t in request.tools if t.kind == "function"]
    if not tools or (request.tool_choice is not None and request.tool_choice.mode == "none"):
        return None
    if request.tool_choice is None or request.tool_choice.mode == "auto":
        # Claude Code puts a system entry after the user's turn; the turn is the last non-system message.
        last = next((m for m in reversed(request.messages) if m.role != "system"), None)
        texts = [p.text for p in last.parts if isinstance(p, ir.Text)] if last and last.role == "user" else []
        if not texts or not _TOOL_WORDS.search(texts[-1]):
            return None
    by_name = {t.name.lower(): t for t in tools}
    forced = request.tool_choice.name if request.tool_choice and request.tool_choice.mode == "tool" else None
    if forced and forced.lower() in by_name:
        return by_name[forced.lower()]
    for name in _PREFERRED_TOOLS:
        if name in by_name:
            return by_name[name]
    return next((t for t in tools if "read" in t.name.lower()), tools[0])


def tool_report(request: ir.Request) -> str | None:
    """What the model says after a tool ran: the tool's name and the start of its result, on one line."""
    last = next((m for m in reversed(request.messages) if m.role != "system"), None)
    if last is None:
        return None
    results = [p for p in last.parts if isinstance(p, ir.ToolResult)]
    if not results:
        return None
    names = {p.id: p.name for m in request.messages for p in m.parts if isinstance(p, ir.ToolCall)}
    result = results[0]
    text = " ".join(" ".join(p.text for p in result.content if isinstance(p, ir.Text)).split())
    return f"The {result.name or names.get(result.call_id, 'tool')} tool returned: {text[:200] or '(nothing)'}"


def arguments_for(tool: ir.Tool, workdir: str) -> dict[str, Any]:
    """Plausible arguments for ``tool``: every required property gets a value of its type."""
    schema = tool.parameters or {}
    properties = schema.get("properties") or {}
    arguments: dict[str, Any] = {}
    for name in schema.get("required") or []:
        kind = (properties.get(name) or {}).get("type", "string")
        lowered = str(name).lower()
        if kind == "string" and ("path" in lowered or "file" in lowered):
            arguments[name] = os.path.join(workdir, "README.md")
        elif kind == "string" and lowered in ("cmd", "command"):
            arguments[name] = "ls"
        elif kind == "array" and lowered in ("cmd", "command"):
            arguments[name] = ["ls"]
        elif kind == "string":
            arguments[name] = "demo"
        elif kind in ("integer", "number"):
            arguments[name] = 1
        elif kind == "boolean":
            arguments[name] = False
        elif kind == "array":
            arguments[name] = []
        elif kind == "object":
            arguments[name] = {}
    return arguments


def _uses_key(recorded: Recorded, key: str) -> bool:
    return any(key in value for value in (*recorded.headers.values(), *recorded.query.values()))


@attrs.define
class DemoPolicy:
    """Decides a simulator's answer in the demo; replaces its ``default_reply``."""

    backend: DemoBackend
    #: The simulator (its ``reply_text``, when it has one, is what its text answers say).
    simulator: Any
    answer: Callable[[Recorded], Reply]
    limited_key: str
    workdir: str
    seen: int = 0

    def reply(self, recorded: Recorded) -> Reply:
        """A rate limit now and then on the first key, a tool call when tools are offered, else text."""
        if _uses_key(recorded, self.limited_key):
            self.seen += 1
            if self.seen % LIMIT_EVERY == 0:
                log.info("demo: the simulated %s upstream refuses its first key with a rate limit (%ds); "
                         "the gateway cools that key and moves to the other", self.backend.provider, LIMIT_SECONDS)
                return self.backend.rate_limit(recorded, LIMIT_SECONDS)
        try:
            request = decode(self.backend.dialect, recorded.json())
        except ValueError:
            request = None
        if request is None:
            return self.answer(recorded)
        tool = offered_tool(request)
        if tool is not None:
            return self.backend.tool_call(recorded, tool.name, arguments_for(tool, self.workdir))
        report = tool_report(request)
        if report is None or not hasattr(self.simulator, "reply_text"):
            return self.answer(recorded)
        # The reply is built synchronously, so no other request sees the swapped text.
        usual, self.simulator.reply_text = self.simulator.reply_text, report
        try:
            return self.answer(recorded)
        finally:
            self.simulator.reply_text = usual


# -- starting it -------------------------------------------------------------------


@attrs.define
class DemoUpstreams:
    """The started simulators and the config that points the gateway at them."""

    backends: list[DemoBackend]
    simulators: dict[str, Simulator]
    #: Top-level config keys (the providers' sections, the client key, an empty auth dir).
    config: dict[str, Any]


def collect_backends(pm: pluggy.PluginManager) -> list[DemoBackend]:
    """Every provider's demo backend, in provider-name order."""
    backends = [b for contributed in pm.hook.demo_backends() for b in contributed or []]
    return sorted(backends, key=lambda b: b.provider)


@contextlib.asynccontextmanager
async def demo_upstreams(pm: pluggy.PluginManager, auth_dir: str, workdir: str = "") -> AsyncIterator[DemoUpstreams]:
    """Start every contributed simulator on loopback; stop them all on exit."""
    backends = collect_backends(pm)
    config: dict[str, Any] = {"api-keys": [CLIENT_KEY], "auth-dir": auth_dir}
    simulators: dict[str, Simulator] = {}
    async with contextlib.AsyncExitStack() as stack:
        for backend in backends:
            keys = demo_keys(backend.provider)
            simulator = backend.simulator(set(keys))
            policy = DemoPolicy(backend, simulator, simulator.default_reply, keys[0], workdir or os.getcwd())
            simulator.default_reply = policy.reply  # type: ignore[method-assign]
            await stack.enter_async_context(simulator)
            simulators[backend.provider] = simulator
            config.update(backend.config(simulator, keys))
        yield DemoUpstreams(backends=backends, simulators=simulators, config=config)


def _yaml(data: dict[str, Any]) -> str:
    stream = io.StringIO()
    YAML(typ="safe").dump(data, stream)
    return stream.getvalue()


def _banner(out: TextIO) -> None:
    print("polyrelay DEMO: the gateway in front of simulated upstreams on this machine "
          "(no network, nothing to configure).", file=out)
    print("Press Ctrl+C to stop it. Run `polyrelay serve --config FILE` to serve real keys (see README.md).",
          file=out, flush=True)


def _print_setup(out: TextIO, url: str, upstreams: DemoUpstreams) -> None:
    models: dict[str, list[str]] = {}
    for backend in upstreams.backends:
        models.setdefault(backend.dialect, []).extend(backend.models)
    served = ", ".join(f"{b.provider} ({', '.join(b.models[:2])}...)" for b in upstreams.backends)
    print(f"\nDemo upstreams: {served}. Any client may use any model.", file=out)
    print("Paste one of these in another terminal:\n", file=out)
    print(client_setup(url, CLIENT_KEY, models), file=out, flush=True)


async def serve_demo(pm: pluggy.PluginManager, host: str = "127.0.0.1", port: int = 8317,
                     out: TextIO | None = None, shutdown_trigger: Callable[[], Awaitable[None]] | None = None) -> None:
    """Run the demo gateway until Ctrl+C (or ``shutdown_trigger``); the simulators stop with it."""
    from polyrelay.plugins import collect_config_sections
    from polyrelay.server import base_url, run

    if not is_loopback(host):
        raise ConfigError(f"the demo only listens on loopback, not {host!r}: its client key is printed for anyone")
    out = out or sys.stdout
    _banner(out)
    with tempfile.TemporaryDirectory(prefix="polyrelay-demo-") as auth_dir:
        async with demo_upstreams(pm, auth_dir) as upstreams:
            if not upstreams.backends:
                raise ConfigError("the demo needs a provider that ships a simulator; none is installed "
                                  "(pip install ./providers/claude, for one)")
            config = load_config(None, collect_config_sections(pm), text=_yaml({**upstreams.config, "port": port}))
            config.host = host
            url = base_url(config, host)
            await run(config, pm, shutdown_trigger=shutdown_trigger,
                      ready=lambda _bind: _print_setup(out, url, upstreams))
