"""polyrelay: a self-hosted LLM API gateway.

The names a plugin needs are re-exported here: ``hookimpl`` to mark hook
implementations, the provider/credential types, and the internal
representation module ``ir``.
"""

from __future__ import annotations

from polyrelay import ir
from polyrelay.plugins import hookimpl
from polyrelay.types import (
    ClientRequest,
    Credential,
    ModelInfo,
    Provider,
    StreamState,
    UpstreamRequest,
    Verdict,
    redact,
)

__version__ = "0.1.0"

__all__ = [
    "ClientRequest",
    "Credential",
    "ModelInfo",
    "Provider",
    "StreamState",
    "UpstreamRequest",
    "Verdict",
    "__version__",
    "hookimpl",
    "ir",
    "redact",
]
