"""Reading the auth dir, and saying truthfully why a file is not served.

A file is one of: served (an installed plugin turned it into a
credential), broken (not JSON, not an object, or claimed by a plugin that
said what is wrong with it), or unclaimed (no installed plugin reads its
``type``).  The messages never quote a file's values, only its name, its
``type`` and the path of a missing or bad field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import cattrs
import pluggy

from polyrelay import defaults

#: Auth-file types CLIProxyAPI writes that no polyrelay provider serves yet.
NOT_SUPPORTED_YET = ("antigravity", "iflow", "kimi", "vertex", "xai")


class AuthFileError(ValueError):
    """Raised by a ``credential_from_file`` implementation for a file of its type it cannot use.

    The message says why (``missing field token.refresh_token``), never a
    value from the file.
    """


@attrs.frozen
class ScannedFile:
    """One ``*.json`` file of the auth dir: its object, or why it has none."""

    path: Path
    data: dict[str, Any] | None
    problem: str | None = None


def scan(directory: Path) -> list[ScannedFile]:
    """Every ``*.json`` file under ``directory`` (recursively), sorted by path."""
    if not directory.is_dir():
        return []
    found = []
    for path in sorted(directory.rglob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            found.append(ScannedFile(path, None, f"cannot be read ({exc.strerror})"))
            continue
        except ValueError as exc:
            where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
            found.append(ScannedFile(path, None, f"is not valid JSON{where}"))
            continue
        if isinstance(data, dict):
            found.append(ScannedFile(path, data))
        else:
            found.append(ScannedFile(path, None, "is not a JSON object"))
    return found


def installed_plugins(pm: pluggy.PluginManager) -> list[str]:
    """The names of the installed plugins (the core's own defaults left out)."""
    return sorted(name for name, plugin in pm.list_name_plugin() if plugin is not defaults)


def unclaimed_reason(kind: Any, installed: list[str]) -> str:
    """Why a file of type ``kind`` that no plugin claimed is not served."""
    if not isinstance(kind, str) or not kind:
        return 'has no "type" field, so no provider can tell it is theirs'
    if kind in NOT_SUPPORTED_YET:
        return f"type {kind!r} is not supported by polyrelay yet (CLIProxyAPI serves it; polyrelay has no provider)"
    return f"no installed plugin reads auth files of type {kind!r} (installed: {', '.join(installed) or 'none'})"


def load_failure(exc: Exception) -> str:
    """Why a plugin could not turn a file of its type into a credential, without quoting a value.

    An :class:`AuthFileError` says it itself; a missing key or a cattrs
    structuring error is reduced to the field's path (the messages of
    either could carry a value from the file).
    """
    if isinstance(exc, AuthFileError):
        return str(exc)
    if isinstance(exc, KeyError) and exc.args:
        return f"missing field {exc.args[0]!r}"
    if isinstance(exc, cattrs.BaseValidationError):
        paths = [line.rpartition(" @ ")[2] for line in cattrs.transform_error(exc)]
        return "missing or invalid field(s) at " + ", ".join(dict.fromkeys(paths))
    return f"its plugin could not read it ({exc.__class__.__name__})"
