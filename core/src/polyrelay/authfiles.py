"""Saying truthfully why an auth file is not served.

:mod:`polyrelay.accounts.authdir` reads the files; a file it cannot serve
is either claimed by a plugin that could not use it (the reason, reduced to
a field path) or of a ``type`` no installed provider handles (which ones
are installed, and whether it is a CLIProxyAPI type polyrelay has no
provider for yet).  The messages never quote a file's values.
"""

from __future__ import annotations

import cattrs

#: Auth-file types CLIProxyAPI writes that no polyrelay provider serves yet.
NOT_SUPPORTED_YET = ("antigravity", "iflow", "kimi", "vertex", "xai")


class AuthFileError(ValueError):
    """Raised by a ``credential_from_file`` implementation for a file of its type it cannot use.

    The message says why (``missing field token.refresh_token``), never a
    value from the file.
    """


def unclaimed_reason(kind: str, installed: list[str]) -> str:
    """Why a file of type ``kind`` that no provider claimed is not served; ``installed``: the providers."""
    if kind in NOT_SUPPORTED_YET:
        return f"type {kind!r} is not supported by polyrelay yet (CLIProxyAPI serves it; polyrelay has no provider)"
    return f"no installed provider handles type {kind!r} (installed: {', '.join(installed) or 'none'})"


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
    return f"its provider could not read it ({exc.__class__.__name__})"
