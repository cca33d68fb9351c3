"""Shared fixtures: a Code Assist simulator with Google accounts, and their CLIProxyAPI auth files."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from polyrelay_gemini import MODELS
from polyrelay_gemini.simulator import CodeAssistSimulator


@pytest.fixture
async def google() -> AsyncIterator[CodeAssistSimulator]:
    """Code Assist and Google's OAuth endpoints on loopback, serving the provider's models."""
    async with CodeAssistSimulator(models=set(MODELS)) as simulator:
        yield simulator


@pytest.fixture
def auth_dir(tmp_path: Path) -> Path:
    """The gateway's auth dir for the test."""
    return tmp_path / "auth"


@pytest.fixture
def auth_file(auth_dir: Path, google: CodeAssistSimulator) -> Callable[..., Path]:
    """Write ``gemini-<email>-<projects>.json`` for a (new) account of ``google``; returns its path."""

    def write(email: str, projects: list[str], lifetime: float = 3000.0, live: bool | None = None,
              **extra: Any) -> Path:
        path = auth_dir / f"gemini-{email}-{'-'.join(projects)}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(google.auth_data(email, projects, lifetime, live, **extra)))
        path.chmod(0o600)
        return path

    return write
