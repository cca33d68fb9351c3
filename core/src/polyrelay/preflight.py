"""What makes a config unsafe to serve, found before anything listens.

``polyrelay serve`` refuses to start on any :attr:`Finding.refuses` finding
and logs the others; ``polyrelay check`` prints them all.  Nothing here
opens a socket; the TLS files are only opened to prove they can be read.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import attrs

from polyrelay.config import Config
from polyrelay.types import Credential

#: CLIProxyAPI's example values, which a copied example file still holds:
#: ``your-api-key-1`` .. ``-3``, ``your-key``, and elided keys like ``sk-atSM...``.
_PLACEHOLDER = re.compile(r"(?i)^(your[-_ ]?(api[-_ ]?)?key([-_ ]?\d+)?|.*\.\.\..*|changeme|change-me)$")


@attrs.frozen
class Finding:
    """One problem with a config, said in words a user can act on."""

    message: str
    #: True: the gateway must not start with it.
    refuses: bool


def is_placeholder(value: str) -> bool:
    """Whether ``value`` is an example value copied from CLIProxyAPI's sample config."""
    return bool(_PLACEHOLDER.match(value.strip()))


def real_api_keys(config: Config) -> list[str]:
    """The client keys that protect the gateway (empty and placeholder values do not)."""
    return [k for k in config.api_keys if k.strip() and not is_placeholder(k)]


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure(config: Config) -> tuple[str, str | None]:
    """The address to listen on, and why it differs from ``host`` (None when it does not).

    An empty ``host`` means every interface, as in CLIProxyAPI.  Without a
    real client key only loopback is served, unless the user insists with
    ``allow-unauthenticated-remote``.
    """
    host = config.host.strip() or "0.0.0.0"
    if real_api_keys(config) or config.allow_unauthenticated_remote or is_loopback(host):
        return host, None
    return "127.0.0.1", (
        f"no api-keys configured: listening on 127.0.0.1 instead of {config.host or 'every interface'!r}; "
        "set api-keys (or allow-unauthenticated-remote: true) to serve other machines"
    )


def _tls_findings(config: Config) -> list[Finding]:
    if not config.tls.enable:
        return []
    findings = []
    for name, value in (("tls.cert", config.tls.cert), ("tls.key", config.tls.key)):
        if not value:
            findings.append(Finding(f"{name} is empty but tls.enable is true", refuses=True))
            continue
        try:
            with Path(value).expanduser().open("rb") as handle:
                handle.read(1)
        except OSError as exc:
            findings.append(Finding(f"{name} {value}: cannot be read ({exc.strerror})", refuses=True))
    return findings


def config_findings(config: Config) -> list[Finding]:
    """Everything wrong with the config itself (client keys, exposure, TLS, management)."""
    findings = []
    placeholders = [k for k in config.api_keys if is_placeholder(k)]
    if placeholders:
        findings.append(Finding(
            f"api-keys holds {len(placeholders)} placeholder value(s) from CLIProxyAPI's example config "
            "(your-api-key-1 and the like): anyone who read the example could use this gateway; "
            "replace them with keys of your own", refuses=True))
    if config.remote_management.secret_key:
        findings.append(Finding(
            "remote-management.secret-key is set, but the management API is not available in polyrelay yet: "
            "remove the key (or keep CLIProxyAPI) rather than run without the management you asked for",
            refuses=True))
    _, why = exposure(config)
    if why:
        findings.append(Finding(why, refuses=False))
    findings.extend(_tls_findings(config))
    return findings


def credential_findings(credentials: list[Credential]) -> list[Finding]:
    """Upstream keys that are still example values (they would only ever be refused upstream)."""
    return [
        Finding(f"{c.provider} credential {c.id} holds a placeholder key from an example config", refuses=False)
        for c in credentials
        if is_placeholder(c.secret)
    ]
