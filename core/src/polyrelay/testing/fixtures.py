"""pytest fixtures for polyrelay and its plugins (loaded as a pytest plugin).

``pip install polyrelay`` registers this module through the ``pytest11``
entry point, so its fixtures appear in every pytest run of that
environment: their names carry the ``polyrelay_`` prefix so they never
shadow a project's own.  They are ``pytest_asyncio`` fixtures, which work
under pytest-asyncio's strict mode as well as its auto mode.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio

from polyrelay.testing.openai_chat import OpenAIChatSimulator


@pytest_asyncio.fixture
async def polyrelay_chat_upstream() -> AsyncIterator[OpenAIChatSimulator]:
    """A running OpenAI-compatible upstream that accepts keys ``sk-test-a`` and ``sk-test-b``."""
    async with OpenAIChatSimulator(keys={"sk-test-a", "sk-test-b"}) as simulator:
        yield simulator


@pytest_asyncio.fixture
async def polyrelay_http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client session."""
    async with aiohttp.ClientSession() as session:
        yield session


def api_key_config(section: str, *entries: tuple[str, str], extra: str = "") -> str:
    """Config YAML for a ``*-api-key`` list of ``(key, base-url)`` entries."""
    lines = [f"{section}:"]
    for key, base in entries:
        lines += [f"  - api-key: {key}", f"    base-url: {base}"]
    return "\n".join(lines) + f"\n{extra}\n"


def compat_config(simulator: OpenAIChatSimulator, keys: list[str], models: str = "", extra: str = "") -> str:
    """Config YAML for one ``openai-compatibility`` entry in front of ``simulator``."""
    key_lines = "\n".join(f"      - api-key: {k}" for k in keys)
    models = models or "      - name: sim-model\n        alias: sim"
    return (
        "openai-compatibility:\n"
        "  - name: sim\n"
        f"    base-url: {simulator.api_base}\n"
        "    api-key-entries:\n"
        f"{key_lines}\n"
        "    models:\n"
        f"{models}\n"
        f"{extra}\n"
    )
