"""Start-up: plugins → config → app → hypercorn."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pluggy
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig

from polyrelay.app import App
from polyrelay.config import Config, load_config
from polyrelay.guard import SERVER_HEADER_BUFFER, throttle_accept_errors
from polyrelay.logs import install_redaction
from polyrelay.plugins import collect_config_sections, make_plugin_manager

if TYPE_CHECKING:
    from hypercorn.typing import ASGIFramework

log = logging.getLogger("polyrelay.server")


def load(
    config_path: str | Path | None = None,
    config_text: str | None = None,
    environ: Mapping[str, str] | None = None,
    extra_plugins: list[tuple[str, object]] | None = None,
) -> tuple[Config, pluggy.PluginManager]:
    """The plugin manager and the config it structures (file, text or defaults)."""
    env: Mapping[str, str] = os.environ if environ is None else environ
    pm = make_plugin_manager(env, extra_plugins)
    path = config_path or env.get("POLYRELAY_CONFIG") or None
    config = load_config(path, collect_config_sections(pm), text=config_text)
    return config, pm


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_host(config: Config) -> str:
    """The address to listen on: loopback unless keys are set or the user insists."""
    if config.api_keys or config.allow_unauthenticated_remote or is_loopback(config.host):
        return config.host or "0.0.0.0"
    log.warning(
        "no api-keys configured: listening on 127.0.0.1 instead of %r; set api-keys (or "
        "allow-unauthenticated-remote: true) to serve other machines",
        config.host,
    )
    return "127.0.0.1"


async def run(
    config: Config,
    pm: pluggy.PluginManager,
    shutdown_trigger: Callable[[], Awaitable[object]] | None = None,
    ready: Callable[[list[str]], None] | None = None,
    app: App | None = None,
) -> None:
    """Serve until ``shutdown_trigger`` completes (or forever / until SIGINT)."""
    app = app or App(config, pm)
    install_redaction(app.gateway.pool.secrets() + list(config.api_keys))
    host = bind_host(config)
    if not config.api_keys:
        log.warning("no api-keys configured: any local client can use this gateway")
    if not app.gateway.live_providers():
        log.warning(
            "no providers configured, so no model can be served: add keys (gemini-api-key, codex-api-key, "
            "claude-api-key, qwen-api-key) or openai-compatibility entries to a config file and start with "
            "--config FILE, or log in to an account with `polyrelay login <provider>` (see README.md)"
        )
    hconfig = HypercornConfig()
    hconfig.bind = [f"[{host}]:{config.port}" if ":" in host else f"{host}:{config.port}"]
    hconfig.accesslog = None
    # hypercorn 0.18 does not close an idle keep-alive connection when the
    # client closes it; the socket sits in CLOSE-WAIT until this timer fires.
    # A short timer bounds that (a reconnect costs a client little).
    hconfig.keep_alive_timeout = 5
    hconfig.h11_max_incomplete_size = SERVER_HEADER_BUFFER  # the guard answers 431 below it, in dialect
    throttle_accept_errors(asyncio.get_running_loop())
    hconfig.graceful_timeout = 2
    log.info(
        "polyrelay serving on %s with %d provider(s), %d credential(s)",
        hconfig.bind[0], len(app.gateway.live_providers()), len(app.gateway.pool),
    )
    if ready is not None:
        ready(hconfig.bind)
    # Starlette's ASGI types are looser than hypercorn's protocol; the app is a standard ASGI 3 app.
    await hypercorn_serve(cast("ASGIFramework", app.starlette()), hconfig, shutdown_trigger=shutdown_trigger)


def main_serve(config: Config, pm: pluggy.PluginManager) -> int:
    """Blocking entry for ``polyrelay serve``."""
    try:
        asyncio.run(run(config, pm))
    except KeyboardInterrupt:
        pass
    return 0
