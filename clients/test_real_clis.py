"""The real coding CLIs against the demo gateway: a plain turn and a tool loop, same-dialect and translated.

Run by ``make test-clients``, which first installs the CLIs pinned in
``clients/package.json`` into ``clients/node_modules`` (git-ignored).  Each
CLI runs with a fresh ``HOME``, telemetry off, offline except for the
gateway on loopback, configured as ``shared/captures/README.md`` records.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from polyrelay.testing.demo_process import DemoProcess, demo_process

BIN = Path(__file__).parent / "node_modules" / ".bin"
KEY = "polyrelay-demo-key"
GREETING = {
    "claude-sonnet-4-5": "Hello from the Claude simulator.",
    "gpt-5": "Hello from the Responses simulator.",
    "gemini-2.5-pro": "Hello from the Gemini simulator.",
    "qwen3-coder-plus": "Hello from the DashScope simulator.",
}
#: CLI → (its own dialect's model, a model of another dialect).
MODELS = {
    "claude": ("claude-sonnet-4-5", "gpt-5"),
    "codex": ("gpt-5", "claude-sonnet-4-5"),
    "gemini": ("gemini-2.5-pro", "qwen3-coder-plus"),
    "qwen": ("qwen3-coder-plus", "gemini-2.5-pro"),
}
#: CLI → (prompt that makes the demo model use a tool, what the tool's result shows).
TOOL_TURN = {
    "claude": ("Read the file README.md", "demo readme marker"),
    "codex": ("list the files", "README.md"),
    "gemini": ("read the file README.md", "demo readme marker"),
    "qwen": ("read the file README.md", "demo readme marker"),
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("project")
    (path / "README.md").write_text("demo readme marker\n")
    return path


@pytest.fixture(scope="module")
def demo(workdir: Path) -> Iterator[DemoProcess]:
    with demo_process(workdir) as running:
        yield running


def run_cli(cli: str, demo: DemoProcess, workdir: Path, home: Path, model: str, prompt: str) -> str:
    """Run one CLI non-interactively; its standard output (it must exit 0)."""
    env = {"PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HOME": str(home), "TERM": "dumb",
           "NO_COLOR": "1", "LANG": "C.UTF-8"}
    if cli == "claude":
        env |= {"ANTHROPIC_BASE_URL": demo.url, "ANTHROPIC_API_KEY": KEY,
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
        argv = ["claude", "-p", prompt, "--model", model, "--allowedTools", "Read"]
    elif cli == "codex":
        env |= {"GW_KEY": KEY}
        provider = ["-c", "model_provider=gw", "-c", "model_providers.gw.name=gw",
                    "-c", f"model_providers.gw.base_url={demo.url}/v1", "-c", "model_providers.gw.env_key=GW_KEY",
                    "-c", "model_providers.gw.wire_api=responses", "-c", "analytics.enabled=false",
                    "-c", "features.plugins=false"]
        argv = ["codex", "exec", "--skip-git-repo-check", *provider, "-m", model, prompt]
    elif cli == "gemini":
        (home / ".gemini").mkdir(exist_ok=True)
        (home / ".gemini" / "settings.json").write_text(json.dumps({
            "security": {"auth": {"selectedType": "gemini-api-key"}}, "privacy": {"usageStatisticsEnabled": False},
            "telemetry": {"enabled": False}}))
        env |= {"GOOGLE_GEMINI_BASE_URL": demo.url, "GEMINI_API_KEY": KEY, "GEMINI_CLI_TRUST_WORKSPACE": "true"}
        argv = ["gemini", "-p", prompt, "-m", model]
    else:
        (home / ".qwen").mkdir(exist_ok=True)
        (home / ".qwen" / "settings.json").write_text(json.dumps({
            "privacy": {"usageStatisticsEnabled": False}, "memory": {"enableManagedAutoMemory": False}}))
        env |= {"OPENAI_BASE_URL": f"{demo.url}/v1", "OPENAI_API_KEY": KEY, "OPENAI_MODEL": model}
        argv = ["qwen", "-p", prompt]
    result = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=240,
                            stdin=subprocess.DEVNULL)
    output = f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    assert result.returncode == 0, f"{cli} exited {result.returncode}:\n{output}"
    return result.stdout


CASES = [(cli, model) for cli, models in MODELS.items() for model in models]


@pytest.mark.parametrize(("cli", "model"), CASES, ids=[f"{c}-{m}" for c, m in CASES])
def test_plain_turn(cli: str, model: str, demo: DemoProcess, workdir: Path, tmp_path: Path) -> None:
    out = run_cli(cli, demo, workdir, tmp_path, model, "say hi")
    assert GREETING[model] in out


@pytest.mark.parametrize(("cli", "model"), CASES, ids=[f"{c}-{m}" for c, m in CASES])
def test_tool_loop(cli: str, model: str, demo: DemoProcess, workdir: Path, tmp_path: Path) -> None:
    prompt, evidence = TOOL_TURN[cli]
    out = run_cli(cli, demo, workdir, tmp_path, model, prompt)
    answer = next((line for line in out.splitlines() if "tool returned:" in line), "")
    assert answer, f"the CLI never sent a tool result back:\n{out[-2000:]}"
    assert evidence in answer, "the CLI ran the tool and the upstream received its output"
