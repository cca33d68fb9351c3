"""``polyrelay check``: what a config and auth dir would serve, found without starting.

It reads what ``serve`` reads (plugins, the config file, the auth dir),
builds the same gateway without listening, and prints: the address it
would listen on, the providers with their models, the credentials by kind
and state, what is ignored and why (config keys polyrelay does not
implement, auth files nobody serves), and every finding that would make
``serve`` refuse to start or that exposes the gateway.  Exit status 1 when
``serve`` would refuse.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import pluggy

from polyrelay.config import Config
from polyrelay.gateway import Gateway
from polyrelay.preflight import Finding, config_findings, credential_findings, exposure, real_api_keys
from polyrelay.server import base_url, load


def _auth_files(gateway: Gateway) -> tuple[list[str], list[str]]:
    """``(served, not served)`` lines for every file of the auth dir."""
    served: list[str] = []
    ignored: list[str] = []
    for path, credentials, reason in gateway.auth_dir.describe():
        if credentials:
            served.extend(f"{path.name} → {c.provider} ({c.kind})" for c in credentials)
        else:
            ignored.append(f"{path.name}: {reason or 'its provider did not take it'}")
    return served, ignored


def _credential_lines(gateway: Gateway) -> list[str]:
    counts: Counter[tuple[str, str, str]] = Counter()
    for credential in gateway.pool:
        row = gateway.pool.describe(credential)
        state = "disabled" if row["disabled"] else ("cooling" if row["cooldown"] else "ready")
        counts[(credential.provider, credential.kind, state)] += 1
    return [f"{provider:16} {kind:8} {n} {state}" for (provider, kind, state), n in sorted(counts.items())]


def report(config: Config, gateway: Gateway, out: TextIO) -> list[Finding]:
    """Print the report; returns every finding (those that refuse included)."""
    host, _ = exposure(config)
    findings = config_findings(config) + credential_findings(list(gateway.pool))

    def section(title: str, lines: list[str]) -> None:
        print(f"\n{title}", file=out)
        for line in lines or ["(none)"]:
            print(f"  {line}", file=out)

    print(f"config: {config.source or 'built-in defaults (no file)'}", file=out)
    print(f"would listen on {base_url(config, host)} (bound to {host}); "
          f"{len(real_api_keys(config))} client key(s)", file=out)
    section(f"providers ({len(gateway.bindings)})", [
        f"{b.provider.name:16} {b.provider.dialect:16} {', '.join(m.id for m in b.provider.models)}"
        for b in gateway.bindings
    ])
    section(f"credentials ({len(gateway.pool)})", _credential_lines(gateway))
    served, ignored = _auth_files(gateway)
    section(f"auth dir {config.auth_path}: served", served)
    section(f"auth dir {config.auth_path}: not served", ignored)
    section(f"config keys polyrelay does not implement yet, ignored ({len(config.unknown_keys)})",
            config.unknown_keys)
    section("problems", [f"{'REFUSES TO START' if f.refuses else 'warning'}: {f.message}" for f in findings])
    return findings


def run_check(config_path: str | Path | None, out: TextIO | None = None,
              extra_plugins: Sequence[tuple[str, object]] = (),
              plugins: pluggy.PluginManager | None = None) -> int:
    """``polyrelay check``: 1 when ``serve`` would refuse to start, else 0.

    ``extra_plugins`` and ``plugins`` are :func:`polyrelay.server.load`'s.
    """
    out = out or sys.stdout
    # The report says everything the loaders would log, once and in order.
    quiet = logging.getLogger("polyrelay")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        config, pm = load(config_path, extra_plugins=extra_plugins, plugins=plugins)
        gateway = Gateway(config, pm)
    finally:
        quiet.setLevel(level)
    findings = report(config, gateway, out)
    refusals = [f for f in findings if f.refuses]
    if refusals:
        print(f"\npolyrelay serve would refuse to start ({len(refusals)} problem(s) above).", file=out)
        return 1
    print("\npolyrelay serve would start with this config.", file=out)
    return 0
