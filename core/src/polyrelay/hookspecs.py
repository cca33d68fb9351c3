"""Hook specifications: the contract between polyrelay and its plugins.

Every hook is synchronous and does no I/O.  pluggy would treat a coroutine
as a result, so an ``async def`` implementation would silently break
``firstresult`` dispatch; async work (token refresh, login) lives in objects
the plugins register (:attr:`polyrelay.types.Provider.refresh`, CLI
commands).

Three hooks are *per provider*: ``translate_request``, ``translate_chunk``
and ``classify_response``.  The core narrows each, once at start, to the
implementation of the plugin that registered a provider and the core's own
dialect-driven default behind it (a pluggy subset hook caller, so tracing
sees the calls), so a streamed chunk never fans out over every installed
plugin.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from polyrelay import ir
from polyrelay.config import Config
from polyrelay.types import ClientRequest, Credential, Provider, StreamItem, StreamState, UpstreamRequest, Verdict

if TYPE_CHECKING:
    from polyrelay.accounts.flows import LoginFlow  # loaded by ``polyrelay login`` only
    from polyrelay.demo import DemoBackend  # the demo's module is loaded by ``serve --demo`` only

hookspec = pluggy.HookspecMarker("polyrelay")


@hookspec
def config_sections() -> dict[str, Any]:
    """Declare the top-level config keys this plugin owns.

    Called once at start, before the config file is read.  Return a mapping
    of YAML key (kebab-case, e.g. ``"gemini-api-key"``) to the type cattrs
    structures its value into (an attrs class, or ``list[SomeAttrsClass]``).
    The structured value is available as ``config.sections[key]``.  All
    implementations are called; two plugins claiming one key is a start-up
    error.
    """


@hookspec
def register_providers(config: Config) -> list[Provider]:
    """Return the providers this plugin serves, given the loaded config.

    Called once at start, after the config is loaded.  All implementations
    are called and their lists concatenated; provider names must be unique.
    A plugin may return several providers (one per ``openai-compatibility``
    entry, say) or none.
    """


@hookspec
def config_credentials(config: Config, provider: Provider) -> list[Credential]:
    """Return the credentials the config file defines for ``provider``.

    Called once per provider at start (API-key entries such as
    ``gemini-api-key``).  All implementations are called; return ``[]`` for
    providers that are not yours.
    """


@hookspec(firstresult=True)
def credential_from_file(data: dict[str, Any], path: Path) -> Credential | list[Credential] | None:
    """Claim one auth-dir JSON file and turn it into a credential.

    Called for every ``*.json`` file under ``auth-dir``, at start and
    whenever one is added or changed while serving.  Look at
    ``data["type"]`` (CLIProxyAPI's field names); return a
    :class:`~polyrelay.types.Credential` (with ``path`` and ``data`` set, so
    refreshed tokens can be written back), a list of them (one file serving
    several rotation members, such as a Google account's projects; give
    each its own ``id``) or ``None`` if the file is not yours.  Raise
    :class:`polyrelay.accounts.SkippedFile` (or
    :class:`~polyrelay.authfiles.AuthFileError`, a field path, never a value)
    for a file of yours that cannot be used.  ``firstresult``: the first plugin to claim a file wins.
    """


@hookspec(firstresult=True)
def select_credential(
    provider: Provider, model: str, candidates: list[Credential], request: ClientRequest
) -> Credential | None:
    """Choose the credential for the next upstream attempt.

    Called before every attempt, retries included, with the candidates that
    are enabled, serve ``model`` and are not cooling down, highest priority
    tier only, in stable order.  Return one of them, or ``None`` to let the
    configured strategy (``routing.strategy``: round-robin or fill-first)
    choose.  ``firstresult``.
    """


@hookspec(firstresult=True)
def translate_request(provider: Provider, request: ClientRequest, credential: Credential) -> UpstreamRequest | None:
    """Build the upstream request for one attempt.

    Called per attempt, only for the implementation of the plugin that
    registered ``provider`` (the core's default serves providers whose plugin
    does not implement it).  ``request.upstream_model`` is the routed model
    name; ``request.decoded()`` gives the internal representation.  Return
    an :class:`~polyrelay.types.UpstreamRequest`, or ``None`` to use the
    core's default for ``provider.dialect`` (pass-through for same-dialect
    clients, codec translation otherwise, the dialect's standard auth header).
    """


@hookspec(firstresult=True)
def translate_chunk(provider: Provider, stream: StreamState, data: bytes) -> list[StreamItem] | None:
    """Turn raw upstream stream bytes into stream items.

    Called for every chunk of an upstream stream, only for the
    implementation of the plugin that registered ``provider``.  ``data`` is
    split wherever the network split it.  Return internal stream events
    (:mod:`polyrelay.ir`) or, on a pass-through stream, raw frames; return
    ``None`` to use the core's default (``stream.decoder.feed(data)``).
    Keep per-stream state on ``stream`` (``stream.extra``), never in globals.
    """


@hookspec(firstresult=True)
def classify_response(
    provider: Provider, status: int, headers: Mapping[str, str], body: bytes, error: ir.ErrorInfo | None
) -> Verdict | None:
    """Decide what a non-success upstream answer means.

    Called for every upstream answer with a status other than 2xx, and for
    a stream whose first item is an error, only for the implementation of
    the plugin that registered ``provider``.  ``error`` is the answer
    decoded by the upstream dialect's codec (for an in-stream error it is
    the only faithful form: ``body`` is then that error re-encoded as the
    dialect's error body).  Declare only the arguments you use.  Return a
    :class:`~polyrelay.types.Verdict` (cool down which scope for how long,
    refresh, or fail the request), or ``None`` for the core's default
    (Retry-After and the dialect's body hints, defaults per status class).
    """


@hookspec
def observe_response(provider: Provider, credential: Credential, status: int, headers: Mapping[str, str]) -> None:
    """Take note of what an upstream answer's headers say about a credential.

    Called for every upstream answer, any status, before it is classified
    or delivered, only for the implementation of the plugin that registered
    ``provider``.  For bookkeeping the rest of the request does not depend
    on: the usage windows a subscription backend reports on every answer,
    kept on ``credential.quota`` (part of ``Pool.describe``).  Returns
    nothing; keep it cheap, it runs on every attempt.
    """


@hookspec
def login_flows() -> list[LoginFlow]:
    """Declare how ``polyrelay login <provider>`` logs in to your accounts.

    Called when the ``login`` command runs.  Return one
    :class:`~polyrelay.accounts.LoginFlow` per provider that has accounts
    (client id, scopes, default endpoint addresses, a browser and/or device
    description, and the coroutine that turns the token answer into the
    auth file); the core runs the OAuth flow itself.  All implementations
    are called and their lists concatenated.
    """


@hookspec
def register_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add CLI subcommands (``polyrelay login <provider>`` and the like).

    Called once when the ``polyrelay`` command starts.  Add parsers with
    ``subparsers.add_parser(...)`` and set ``func`` on them with
    ``set_defaults(func=callable)``; the callable receives the parsed
    ``argparse.Namespace`` and returns an exit code.  All implementations
    are called.
    """


@hookspec
def demo_backends() -> list[DemoBackend]:
    """Contribute this plugin's simulated upstreams to ``polyrelay serve --demo``.

    Called once when the demo starts.  Return one
    :class:`~polyrelay.demo.DemoBackend` per provider: factories for the
    provider's simulator and its config, and the upstream's own rate-limit
    and tool-call answers.  Start nothing here; the core starts each
    simulator on loopback and stops it.  All implementations are called.
    """
