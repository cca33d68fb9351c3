"""Configuration: one YAML file, kebab-case keys, structured into attrs classes.

Key names follow CLIProxyAPI's ``config.yaml`` so an existing file loads.
Keys nobody implements are accepted and named in one warning; a value of
the wrong type fails start-up with the key's path.  No file at all means the
embedded defaults.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import types
import typing
from pathlib import Path
from typing import Any, cast

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override
from cattrs.v import format_exception
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

log = logging.getLogger("polyrelay.config")


class ConfigError(ValueError):
    """The config file cannot be used; the message names the key path."""


@attrs.define
class StreamingConfig:
    #: SSE keep-alive while the upstream is silent; 0 turns it off.
    keepalive_seconds: float = 15.0


def _non_negative(_instance: Any, attribute: Any, value: float | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"{attribute.name.replace('_', '-')} must be 0 (no deadline) or more, not {value}")


@attrs.define
class TimeoutOverrides:
    """One provider's deadlines; an unset key keeps the global value."""

    connect_seconds: float | None = attrs.field(default=None, validator=_non_negative)
    first_byte_seconds: float | None = attrs.field(default=None, validator=_non_negative)
    idle_seconds: float | None = attrs.field(default=None, validator=_non_negative)
    total_seconds: float | None = attrs.field(default=None, validator=_non_negative)


@attrs.define
class UpstreamTimeouts:
    """Deadlines on every upstream request, in seconds; 0 means none.

    ``first-byte`` runs until the upstream's response headers, ``idle``
    between complete frames (or until a complete body), ``total`` over the
    whole answer.  ``providers`` overrides them per provider name.
    """

    connect_seconds: float = attrs.field(default=30.0, validator=_non_negative)
    first_byte_seconds: float = attrs.field(default=600.0, validator=_non_negative)
    idle_seconds: float = attrs.field(default=180.0, validator=_non_negative)
    total_seconds: float = attrs.field(default=0.0, validator=_non_negative)
    providers: dict[str, TimeoutOverrides] = attrs.field(factory=dict)

    def for_provider(self, name: str) -> UpstreamTimeouts:
        """The deadlines that apply to provider ``name``."""
        own = self.providers.get(name)
        if own is None:
            return self
        changes = {k: v for k, v in attrs.asdict(own).items() if v is not None}
        return attrs.evolve(self, **changes)


@attrs.define
class RoutingConfig:
    strategy: str = attrs.field(default="round-robin")

    @strategy.validator
    def _check(self, _attribute: Any, value: str) -> None:
        if value not in ("round-robin", "fill-first"):
            raise ValueError("must be 'round-robin' or 'fill-first'")  # config errors never echo a value


@attrs.define
class TlsConfig:
    """HTTPS for the listener (CLIProxyAPI's ``tls`` block); hypercorn serves it."""

    enable: bool = False
    cert: str = ""
    key: str = ""


@attrs.define
class RemoteManagementConfig:
    """CLIProxyAPI's management API; read only to refuse a file that asks for it."""

    #: Set means the user wants the management API, which polyrelay does not have yet.
    secret_key: str = attrs.field(default="", repr=False)


@attrs.define
class ClientLimits:
    """What one client may hold of the gateway (see docs/architecture.md, "The guard")."""

    #: Deadline for reading a whole request body; 0 turns it off.
    body_seconds: float = 60.0
    #: Requests in flight per client key (per address without ``api-keys``); 0 = no cap.
    concurrent_requests: int = 64


@attrs.define
class QuotaExceededConfig:
    """CLIProxyAPI's ``quota-exceeded`` block: what to do once a model's quota is spent."""

    #: Serve from another project of the same login.  polyrelay always does: a provider registers each
    #: project of a login as a rotation member of its own, so ``false`` changes nothing (warned at start).
    switch_project: bool = True
    #: Once every credential serving a model is cooling after a 429, serve the request with that
    #: model's preview sibling (``ModelInfo.previews``) over the same credentials.
    switch_preview_model: bool = False


@attrs.define
class Config:
    """Everything the core reads from ``config.yaml``."""

    host: str = "127.0.0.1"
    port: int = 8317
    auth_dir: str = "~/.polyrelay"
    api_keys: list[str] = attrs.field(factory=list)
    debug: bool = False
    proxy_url: str = ""
    request_retry: int = 3
    max_retry_credentials: int = 0
    max_retry_interval: float = 30.0
    disable_cooling: bool = False
    transient_error_cooldown_seconds: float = 0.0
    nonstream_keepalive_interval: float = 0.0
    streaming: StreamingConfig = attrs.field(factory=StreamingConfig)
    tls: TlsConfig = attrs.field(factory=TlsConfig)
    remote_management: RemoteManagementConfig = attrs.field(factory=RemoteManagementConfig)
    upstream_timeouts: UpstreamTimeouts = attrs.field(factory=UpstreamTimeouts)
    routing: RoutingConfig = attrs.field(factory=RoutingConfig)
    quota_exceeded: QuotaExceededConfig = attrs.field(factory=QuotaExceededConfig)
    # polyrelay's own keys
    #: Client model name or pattern (``*`` wildcards) → model or ``provider/model``.
    model_aliases: dict[str, str] = attrs.field(factory=dict)
    #: Per-provider upstream address overrides: ``{provider: {url-name: url}}``.
    upstream_urls: dict[str, dict[str, str]] = attrs.field(factory=dict)
    #: Per-provider proactive refresh lead: ``{provider: seconds before expiry}``.
    refresh_lead_seconds: dict[str, float] = attrs.field(factory=dict)
    max_body_mb: float = 32.0
    #: Serve on a non-loopback address even though ``api-keys`` is empty.
    allow_unauthenticated_remote: bool = False
    client_limits: ClientLimits = attrs.field(factory=ClientLimits)
    #: Browser origins (``https://app.example``) allowed to call the gateway; CORS answers only these.
    cors_origins: list[str] = attrs.field(factory=list)
    #: Sections contributed by plugins (``config_sections`` hook), by key.
    sections: dict[str, Any] = attrs.field(factory=dict)
    #: Where the file was read from (None = embedded defaults).
    source: Path | None = None
    #: Key paths the file set that nothing in polyrelay reads.
    unknown_keys: list[str] = attrs.field(factory=list)

    @property
    def auth_path(self) -> Path:
        """``auth-dir`` with ``~`` expanded."""
        return Path(self.auth_dir).expanduser()

    def resolve_alias(self, model: str) -> str | None:
        """The alias target for ``model``: exact keys first, then patterns in order."""
        if model in self.model_aliases:
            return self.model_aliases[model]
        for pattern, target in self.model_aliases.items():
            if "*" in pattern and fnmatch.fnmatchcase(model, pattern):
                return target
        return None


# CLIProxyAPI keys polyrelay accepts but does not act on yet: named in one warning.
_CORE_KEYS_NOT_STRUCTURED = {"sections", "source", "unknown_keys"}


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class _WrongType(ValueError):
    """A value of the wrong YAML type; the message names the types, never the value."""


def _strict_str(value: Any, _kind: type) -> str:
    # cattrs would call str() on anything, turning a mapping into "{'name': ...}".
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # YAML reads an all-digit key as a number
    raise ValueError(f"expected a string, got {type(value).__name__}")


def _strict_bool(value: Any, _kind: type) -> bool:
    # cattrs would call bool() on anything: "no", "false" and 0.5 would all read as true.
    if isinstance(value, bool):
        return value
    raise _WrongType(f"expected true or false, got {type(value).__name__}")


def make_converter() -> cattrs.Converter:
    """A converter that reads kebab-case keys into snake_case attrs fields.

    An attrs class with a ``from_string`` classmethod also accepts a plain
    string in place of a mapping (``models: [gemini-2.5-pro]``).
    """
    converter = cattrs.Converter(forbid_extra_keys=False)
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(bool, _strict_bool)

    def structure_factory(cls: type) -> Any:
        overrides = {a.name: override(rename=_kebab(a.name)) for a in attrs.fields(cls)}
        # cattrs takes the overrides as keywords beside its own flags; Any says they cannot clash.
        from_mapping: Any = make_dict_structure_fn(cls, converter, **cast(dict[str, Any], overrides))
        from_string = getattr(cls, "from_string", None)
        if from_string is None:
            return from_mapping

        def structure(data: Any, kind: type) -> Any:
            return from_string(data) if isinstance(data, str) else from_mapping(data, kind)

        return structure

    converter.register_structure_hook_factory(attrs.has, structure_factory)
    return converter


def _unknown_keys(cls: Any, data: Any, path: str) -> list[str]:
    """Key paths in ``data`` that ``cls`` does not declare, recursively."""
    if typing.get_origin(cls) in (typing.Union, types.UnionType):  # ``X | None``: look into X
        options = [a for a in typing.get_args(cls) if a is not type(None)]
        cls = options[0] if len(options) == 1 else Any
    if typing.get_origin(cls) is list and isinstance(data, list):
        (item,) = typing.get_args(cls) or (Any,)
        return [k for i, v in enumerate(data) for k in _unknown_keys(item, v, f"{path}[{i}]")]
    if not isinstance(data, dict) or not (isinstance(cls, type) and attrs.has(cls)):
        return []
    fields = {_kebab(a.name): a for a in attrs.fields(cls)}
    hints = typing.get_type_hints(cls)
    found = []
    for key, value in data.items():
        key_path = f"{path}.{key}" if path else str(key)
        field = fields.get(key)
        if field is None or field.name in _CORE_KEYS_NOT_STRUCTURED:
            found.append(key_path)
            continue
        found.extend(_unknown_keys(hints[field.name], value, key_path))
    return found


def _structure(converter: cattrs.Converter, kind: Any, data: Any, path: str) -> Any:
    try:
        return converter.structure(data, kind)
    except cattrs.BaseValidationError as exc:
        lines = cattrs.transform_error(exc, path=path or "$", format_exception=_describe)
        problems = "; ".join(_kebab_path(line) for line in lines)
        raise ConfigError(f"invalid config: {problems}") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid config at {path}: {exc}") from None


def _describe(exc: BaseException, kind: type | None) -> str:
    # Validators raise ValueError with a message worth showing as it is.
    if (kind is None and isinstance(exc, ValueError)) or isinstance(exc, _WrongType):
        return str(exc)
    return format_exception(exc, kind)


def _kebab_path(line: str) -> str:
    # cattrs reports attribute names after " @ "; users wrote kebab-case keys.
    message, sep, where = line.rpartition(" @ ")
    return f"{message}{sep}{where.replace('_', '-')}" if sep else line


def _yaml_problem(exc: YAMLError) -> str:
    """What is wrong and where, without the text around it.

    ruamel's own message quotes the offending line, and that line is often
    ``api-keys: [sk-...``: the position is all a user needs to find it.
    """
    problem = getattr(exc, "problem", None) or "syntax error"
    problem = re.sub(r"'[^'\s]{2,}'", "'…'", str(problem))  # a quoted token may be part of a value
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return problem
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"


def load_config(
    path: str | Path | None = None, sections: dict[str, Any] | None = None, text: str | None = None
) -> Config:
    """Read and validate a config file (``None`` = embedded defaults).

    ``sections`` maps plugin-owned keys to their types (see the
    ``config_sections`` hook).
    """
    sections = sections or {}
    raw: Any = {}
    source = Path(path) if path is not None else None
    if text is None and source is not None:
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {source}: {exc.strerror}") from None
    if text is not None:
        try:
            raw = YAML(typ="safe").load(text)
        except YAMLError as exc:
            raise ConfigError(f"config file {source or '<text>'} is not valid YAML: {_yaml_problem(exc)}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("invalid config: the top level must be a mapping of keys to values")

    converter = make_converter()
    core_raw = {k: v for k, v in raw.items() if k not in sections}
    config: Config = _structure(converter, Config, core_raw, "")
    for key, kind in sections.items():
        if key in raw and raw[key] is not None:
            config.sections[key] = _structure(converter, kind, raw[key], key)
        else:
            config.sections[key] = converter.structure([], kind) if typing.get_origin(kind) is list else None
    config.source = source

    unknown = _unknown_keys(Config, core_raw, "")
    for key, kind in sections.items():
        if key in raw:
            unknown.extend(_unknown_keys(kind, raw[key], key))
    if unknown:
        log.warning("config keys accepted but not used by polyrelay: %s", ", ".join(unknown))
    config.unknown_keys = unknown
    if not config.quota_exceeded.switch_project:
        log.warning("quota-exceeded.switch-project: false has no effect: each project of a login is its own "
                    "credential, and the next credential serves when one's quota is spent")
    return config
