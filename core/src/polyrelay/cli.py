"""The ``polyrelay`` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from polyrelay import collector
from polyrelay.config import Config, ConfigError
from polyrelay.gateway import Gateway
from polyrelay.logs import setup_logging
from polyrelay.plugins import PluginLoadError, call_each, make_plugin_manager, plugin_distributions
from polyrelay.server import load, main_serve

NOTHING_CONFIGURED = (
    "nothing is configured{where}: add keys (claude-api-key, codex-api-key, gemini-api-key, qwen-api-key or "
    "openai-compatibility) to a config file and pass --config FILE; `polyrelay serve --demo` shows one that "
    "answers without any"
)


def _loaded(args: argparse.Namespace, debug: bool = False) -> tuple[Config, Gateway]:
    # Logging first: reading the config may already warn (unknown keys, auth files).
    setup_logging(debug)
    config, pm = load(args.config, plugins=args.plugins)
    if config.debug:
        setup_logging(True)
    return config, Gateway(config, pm)


def _nothing(config: Config) -> str:
    return NOTHING_CONFIGURED.format(where=f" in {config.source}" if config.source else "")


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the gateway (or, with ``--demo``, the gateway in front of simulated upstreams)."""
    setup_logging()
    if args.demo:
        from polyrelay.demo import serve_demo

        try:
            asyncio.run(serve_demo(args.plugins, args.host or "127.0.0.1", args.port or 8317))
        except KeyboardInterrupt:
            pass
        return 0
    config, pm = load(args.config, plugins=args.plugins)
    if config.debug:
        setup_logging(True)
    if args.host:
        config.host = args.host
    if args.port:
        config.port = args.port
    return main_serve(config, pm)


def cmd_check(args: argparse.Namespace) -> int:
    """Report what a config and auth dir would serve, without starting."""
    from polyrelay.check import run_check

    return run_check(args.config, plugins=args.plugins)


def cmd_plugins(args: argparse.Namespace) -> int:
    """List installed plugins with their distributions and versions."""
    for name, dist, version in plugin_distributions(args.plugins):
        print(f"{name:24} {dist} {version}".rstrip())
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """List routable models and the provider serving each."""
    config, gateway = _loaded(args)
    models = gateway.models()
    if not models:
        print(_nothing(config), file=sys.stderr)
    for model, provider in models:
        print(f"{model:40} {provider}")
    return 0


def cmd_credentials(args: argparse.Namespace) -> int:
    """Each credential with its state and cooldowns, secrets redacted."""
    config, gateway = _loaded(args)
    rows = [gateway.pool.describe(c) for c in gateway.pool]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(_nothing(config) + f"; auth files are read from {config.auth_path}", file=sys.stderr)
    for row in rows:
        state = "disabled" if row["disabled"] else ("cooling" if row["cooldown"] else "ready")
        if row["disabled"] and row["disabled_reason"]:
            state += f" ({row['disabled_reason']})"
        elif row["cooldown"]:
            state += f" {row['cooldown']['seconds_left']:g}s ({row['cooldown']['reason']})"
        if row["write_error"]:
            state += f"; {row['write_error']}"
        print(f"{row['provider']:16} {row['id']:40} {row['kind']:8} {row['label']:24} {state}")
    return 0


def cmd_login(args: argparse.Namespace) -> int:
    """Run a provider's login flow (its options are parsed by the flow's own parser)."""
    from polyrelay.accounts.login import login_command  # the login machinery loads for this command only

    return login_command(args)


CONFIG_HELP = "config.yaml (default: $POLYRELAY_CONFIG, else built-in defaults)"


def config_option() -> argparse.ArgumentParser:
    """A parent parser giving a subcommand ``--config`` (plugins use it too)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", default=argparse.SUPPRESS, help=CONFIG_HELP)
    return common


def parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    """The argument parser and its subcommand set (plugins add to the latter)."""
    top = argparse.ArgumentParser(
        prog="polyrelay", description="Self-hosted LLM API gateway.",
        epilog="Start with `polyrelay serve --demo`. CLIProxyAPI's flags (-config FILE, -claude-login, ...) work too.",
    )
    top.add_argument("--config", "-c", default=None, help=CONFIG_HELP)
    sub = top.add_subparsers(dest="command")
    common = [config_option()]
    serve = sub.add_parser("serve", help="run the gateway", parents=common)
    serve.add_argument("--host", help="listen address (overrides config)")
    serve.add_argument("--port", type=int, help="listen port (overrides config)")
    serve.add_argument("--demo", action="store_true",
                       help="serve simulated upstreams of every installed provider (no config, no network)")
    serve.set_defaults(func=cmd_serve)
    check = sub.add_parser("check", help="report what a config would serve, without starting", parents=common)
    check.set_defaults(func=cmd_check)
    sub.add_parser("plugins", help="list installed plugins", parents=common).set_defaults(func=cmd_plugins)
    sub.add_parser("models", help="list routable models", parents=common).set_defaults(func=cmd_models)
    creds = sub.add_parser("credentials", help="list credentials and their cooldowns", parents=common)
    creds.add_argument("--json", action="store_true", help="machine-readable output")
    creds.set_defaults(func=cmd_credentials)
    login = sub.add_parser(
        "login", help="log in to a subscription account and store it in the auth dir",
        description="Log in to a provider account (run `polyrelay login <provider> --help` for its options).",
    )
    login.add_argument("provider", nargs="?", help="provider name (claude, codex, gemini, qwen, …)")
    login.add_argument("options", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    login.set_defaults(func=cmd_login)
    return top, sub


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``polyrelay`` command."""
    from polyrelay.cliproxy_flags import translate

    argv = translate(list(sys.argv[1:] if argv is None else argv))
    try:
        top, sub = parser()
        # One manager for the whole command: plugins add subcommands to it, then serve it.
        plugins = make_plugin_manager()
        call_each(plugins, "register_commands", subparsers=sub)
        top.set_defaults(plugins=plugins)
        if not argv:
            top.print_help()
            return 0
        args = top.parse_args(argv)
        if args.command is None:  # only options, as CLIProxyAPI's service files start it: serve
            args = top.parse_args(["serve", *argv])
        if args.func is not cmd_serve or args.demo:
            collector.resume()  # polyrelay.__main__ set the start-up thresholds for the gateway's sake
        return int(args.func(args) or 0)
    except (ConfigError, PluginLoadError) as exc:
        print(f"polyrelay: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
