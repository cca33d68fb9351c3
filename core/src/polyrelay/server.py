"""Start-up: plugins → config → app → hypercorn."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pluggy
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig

from polyrelay import collector
from polyrelay.app import App
from polyrelay.config import Config, ConfigError, load_config
from polyrelay.guard import SERVER_HEADER_BUFFER, throttle_accept_errors
from polyrelay.logs import install_redaction
from polyrelay.plugins import collect_config_sections, make_plugin_manager
from polyrelay.preflight import config_findings, credential_findings, exposure, real_api_keys

log = logging.getLogger("polyrelay.server")


def load(
    config_path: str | Path | None = None,
    config_text: str | None = None,
    environ: Mapping[str, str] | None = None,
    extra_plugins: Sequence[tuple[str, object]] = (),
    plugins: pluggy.PluginManager | None = None,
) -> tuple[Config, pluggy.PluginManager]:
    """The plugin manager and the config it structures (file, text or defaults).

    ``plugins`` is a manager already built (the command's own, which registered
    its subcommands); without it one is built from ``environ`` and ``extra_plugins``.
    """
    if plugins is not None and extra_plugins:
        raise ValueError("pass extra_plugins to make_plugin_manager when passing plugins")
    env = dict(os.environ if environ is None else environ)
    with collector.starting():  # plugin imports and config structuring: start-up objects
        pm = plugins if plugins is not None else make_plugin_manager(env, list(extra_plugins))
        path = config_path or env.get("POLYRELAY_CONFIG") or None
        config = load_config(path, collect_config_sections(pm), text=config_text)
    return config, pm


def refuse_or_warn(config: Config, app: App) -> None:
    """Raise :class:`ConfigError` on a config that must not be served; log what is merely unwise."""
    findings = config_findings(config) + credential_findings(list(app.gateway.pool))
    refusals = [f.message for f in findings if f.refuses]
    if refusals:
        raise ConfigError("refusing to start: " + "; ".join(refusals))
    for finding in findings:
        log.warning("%s", finding.message)


def hypercorn_config(config: Config, host: str) -> HypercornConfig:
    """The listener: address, TLS, and timers that bound idle connections."""
    hconfig = HypercornConfig()
    hconfig.bind = [f"[{host}]:{config.port}" if ":" in host else f"{host}:{config.port}"]
    hconfig.accesslog = None
    # Our own start-up line says where we listen; hypercorn's default logger
    # would add its "Running on" line twice (own handler plus propagation).
    hypercorn_log = logging.getLogger("hypercorn.error")
    hypercorn_log.setLevel(logging.WARNING)
    hconfig.errorlog = hypercorn_log
    if config.tls.enable:
        hconfig.certfile = str(Path(config.tls.cert).expanduser())
        hconfig.keyfile = str(Path(config.tls.key).expanduser())
    # hypercorn 0.18 does not close an idle keep-alive connection when the
    # client closes it; the socket sits in CLOSE-WAIT until this timer fires.
    # A short timer bounds that (a reconnect costs a client little).
    hconfig.keep_alive_timeout = 5
    hconfig.h11_max_incomplete_size = SERVER_HEADER_BUFFER  # the guard answers 431 below it, in dialect
    hconfig.graceful_timeout = 2
    return hconfig


def base_url(config: Config, host: str) -> str:
    """The address a client on this machine uses."""
    scheme = "https" if config.tls.enable else "http"
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    shown = f"[{shown}]" if ":" in shown and not shown.startswith("[") else shown
    return f"{scheme}://{shown}:{config.port}"


async def run(
    config: Config,
    pm: pluggy.PluginManager,
    shutdown_trigger: Callable[[], Awaitable[object]] | None = None,
    ready: Callable[[list[str]], None] | None = None,
    app: App | None = None,
) -> None:
    """Serve until ``shutdown_trigger`` completes (or until SIGINT / SIGTERM)."""
    app = app or App(config, pm)
    install_redaction(app.gateway.pool.secrets() + list(config.api_keys))
    refuse_or_warn(config, app)
    host, moved = exposure(config)
    if not real_api_keys(config) and moved is None:
        log.warning("no api-keys configured: any local client can use this gateway")
    if not len(app.gateway.pool):
        hint = "" if config.source is not None else " and start with --config FILE"
        log.warning(
            "no credentials yet, so no model can be served: add keys (gemini-api-key, codex-api-key, "
            "claude-api-key, qwen-api-key) or openai-compatibility entries to a config file%s, or log in to an "
            "account with `polyrelay login <provider>` (see README.md); `polyrelay serve --demo` shows a gateway "
            "that answers, with nothing to configure", hint,
        )
    hconfig = hypercorn_config(config, host)
    throttle_accept_errors(asyncio.get_running_loop())
    log.info(
        "polyrelay serving on %s with %d provider(s), %d credential(s) (Ctrl+C to stop)",
        base_url(config, host), len(app.gateway.live_providers()), len(app.gateway.pool),
    )
    if ready is not None:
        ready(hconfig.bind)
    asgi: Any = app.starlette()  # hypercorn's ASGI type is narrower than Starlette's signature
    _check_bindable(hconfig)
    await hypercorn_serve(asgi, hconfig, shutdown_trigger=shutdown_trigger or _signalled())


def _check_bindable(hconfig: HypercornConfig) -> None:
    """A busy or foreign address is a one-line error, before the app's lifespan starts.

    hypercorn binds the same way (``SO_REUSEADDR``), so closing these sockets
    and letting it bind again right after succeeds.
    """
    try:
        sockets = hconfig.create_sockets()
    except OSError as exc:
        if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        raise ConfigError(f"cannot listen on {hconfig.bind[0]}: {exc.strerror} (see host and port)") from None
    for sock in sockets.secure_sockets + sockets.insecure_sockets + sockets.quic_sockets:
        sock.close()


def _signalled() -> Callable[[], Awaitable[None]]:
    """A trigger that fires on SIGINT or SIGTERM, so the server (and what it owns) stops cleanly."""
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on this platform / thread
            loop.add_signal_handler(signum, event.set)

    async def wait() -> None:
        await event.wait()

    return wait


def _settle_soon(_bind: list[str]) -> None:
    # Called as the listener opens; off the first request's path (polyrelay.collector says why).
    asyncio.get_running_loop().call_later(collector.SETTLE_SECONDS, collector.tune_for_serving)


def main_serve(config: Config, pm: pluggy.PluginManager) -> int:
    """Blocking entry for ``polyrelay serve``."""
    collector.start_up()
    try:
        asyncio.run(run(config, pm, ready=_settle_soon))
    except KeyboardInterrupt:
        pass
    return 0
