"""The ``polyrelay`` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from polyrelay.accounts.login import add_login_command
from polyrelay.config import ConfigError
from polyrelay.gateway import Gateway
from polyrelay.logs import setup_logging
from polyrelay.plugins import PluginLoadError, call_each, make_plugin_manager, plugin_distributions
from polyrelay.server import load, main_serve


def _gateway(args: argparse.Namespace) -> Gateway:
    config, pm = load(args.config)
    return Gateway(config, pm)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the gateway."""
    config, pm = load(args.config)
    if args.host:
        config.host = args.host
    if args.port:
        config.port = args.port
    setup_logging(config.debug)
    return main_serve(config, pm)


def cmd_plugins(args: argparse.Namespace) -> int:
    """List installed plugins with their distributions and versions."""
    pm = make_plugin_manager()
    for name, dist, version in plugin_distributions(pm):
        print(f"{name:24} {dist} {version}".rstrip())
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """List routable models and the provider serving each."""
    for model, provider in _gateway(args).models():
        print(f"{model:40} {provider}")
    return 0


def cmd_credentials(args: argparse.Namespace) -> int:
    """Each credential with its state and cooldowns, secrets redacted."""
    gateway = _gateway(args)
    rows = [gateway.pool.describe(c) for c in gateway.pool]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
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


CONFIG_HELP = "config.yaml (default: $POLYRELAY_CONFIG, else built-in defaults)"


def config_option() -> argparse.ArgumentParser:
    """A parent parser giving a subcommand ``--config`` (plugins use it too)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", default=argparse.SUPPRESS, help=CONFIG_HELP)
    return common


def parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    """The argument parser and its subcommand set (plugins add to the latter)."""
    top = argparse.ArgumentParser(prog="polyrelay", description="Self-hosted LLM API gateway.")
    top.add_argument("--config", "-c", default=None, help=CONFIG_HELP)
    sub = top.add_subparsers(dest="command")
    common = [config_option()]
    serve = sub.add_parser("serve", help="run the gateway", parents=common)
    serve.add_argument("--host", help="listen address (overrides config)")
    serve.add_argument("--port", type=int, help="listen port (overrides config)")
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("plugins", help="list installed plugins", parents=common).set_defaults(func=cmd_plugins)
    sub.add_parser("models", help="list routable models", parents=common).set_defaults(func=cmd_models)
    creds = sub.add_parser("credentials", help="list credentials and their cooldowns", parents=common)
    creds.add_argument("--json", action="store_true", help="machine-readable output")
    creds.set_defaults(func=cmd_credentials)
    add_login_command(sub)
    return top, sub


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``polyrelay`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        top, sub = parser()
        call_each(make_plugin_manager(), "register_commands", subparsers=sub)
        args = top.parse_args(argv)
        if args.command is None:
            args = top.parse_args(["serve", *argv])
        return int(args.func(args) or 0)
    except (ConfigError, PluginLoadError) as exc:
        print(f"polyrelay: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
