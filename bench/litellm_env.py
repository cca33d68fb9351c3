"""LiteLLM as the comparison gateway: installed by the bench into ``bench/.litellm-venv``.

The version is pinned.  1.102.4 is the newest release whose ``[proxy]``
extra resolves against the package index this machine reaches (1.103 and
later require a ``certifi`` release the index does not carry); it is well
clear of the releases named in LiteLLM's supply-chain incident.  The proxy
runs offline: no database, no telemetry, the bundled model cost map, access
logs off, one uvicorn worker, configured as a plain OpenAI-compatible proxy
in front of the same simulator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import payloads
from bench.gateway_env import served
from bench.proc import Processes

VERSION = "1.102.4"
VENV = Path(__file__).resolve().parent / ".litellm-venv"
MARKER = VENV / f".installed-{VERSION}"

ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_TELEMETRY": "False",
    "LITELLM_LOG": "ERROR",
    "DISABLE_ADMIN_UI": "True",
    "NO_DOCS": "True",
    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
}


def config_text(sim_port: int) -> str:
    """The proxy config: one model, the simulator as an OpenAI-compatible api_base, extras off."""
    return (
        "model_list:\n"
        "  - model_name: bench\n"
        "    litellm_params:\n"
        "      model: openai/bench-model\n"
        f"      api_base: http://127.0.0.1:{sim_port}/v1\n"
        f"      api_key: {payloads.API_KEY}\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "  set_verbose: false\n"
        "  drop_params: true\n"
        "  request_timeout: 60\n"
        "  num_retries: 0\n"
        "  callbacks: []\n"
        "general_settings:\n"
        "  disable_spend_logs: true\n"
        "  disable_error_logs: true\n"
    )


LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"err": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
    "loggers": {
        "uvicorn": {"handlers": ["err"], "level": "WARNING"},
        "uvicorn.error": {"level": "WARNING"},
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}


def installed_version() -> str | None:
    """The LiteLLM version in the bench venv, or None."""
    python = VENV / "bin" / "python"
    if not python.exists():
        return None
    try:
        out = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
            capture_output=True, text=True, timeout=60, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def ensure_installed(log: Path, timeout: float = 900.0) -> tuple[bool, str]:
    """Install ``litellm[proxy]==VERSION`` into the bench venv once; ``(ok, version or reason)``."""
    if MARKER.exists() and installed_version() == VERSION:
        return True, VERSION
    try:
        if not (VENV / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True, timeout=300,
                           capture_output=True)
        with open(log, "ab") as out:
            subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet",
                            "--disable-pip-version-check", f"litellm[proxy]=={VERSION}"],
                           check=True, timeout=timeout, stdout=out, stderr=out)
    except subprocess.TimeoutExpired:
        return False, f"pip install did not finish within {timeout:.0f}s"
    except (OSError, subprocess.CalledProcessError) as exc:
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        tail = " | ".join(([line for line in lines if "ERROR" in line] or lines)[-2:])
        return False, f"install failed ({exc.__class__.__name__}): {tail[:400]}"
    version = installed_version()
    if version != VERSION:
        return False, f"installed version is {version!r}, expected {VERSION}"
    MARKER.write_text(VERSION + "\n")
    return True, VERSION


class LiteLLM:
    """One LiteLLM proxy process in front of the simulator."""

    def __init__(self, procs: Processes, workdir: Path, port: int, sim_port: int, core: int | None) -> None:
        self.procs = procs
        self.port = port
        self.core = core
        self.config = workdir / "litellm.yaml"
        self.config.write_text(config_text(sim_port))
        self.log_config = workdir / "litellm-logging.json"
        self.log_config.write_text(json.dumps(LOG_CONFIG))
        self.proc: subprocess.Popen[Any] | None = None

    def describe(self) -> dict[str, Any]:
        """Version, command line, environment and config, for the report."""
        return {"version": VERSION, "command": self.command(), "env": ENV, "config": self.config.read_text(),
                "workers": 1}

    def command(self) -> list[str]:
        """The proxy's command line."""
        return [str(VENV / "bin" / "litellm"), "--config", str(self.config), "--host", "127.0.0.1",
                "--port", str(self.port), "--num_workers", "1", "--log_config", str(self.log_config),
                "--telemetry", "False"]

    def start(self, timeout: float = 180.0) -> float:
        """Start and wait until a chat completion is served; the seconds that took."""
        env = {**os.environ, **ENV}
        started = time.perf_counter()
        self.proc = self.procs.spawn(self.command(), "litellm", core=self.core, env=env)
        raw = payloads.request_for({"port": self.port, "path": "/v1/chat/completions", "payload": "chat1k",
                                    "model": "bench"}, close=True)
        deadline = time.monotonic() + timeout
        reason = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"litellm exited with {self.proc.returncode}: {self.log_tail()}")
            ok, reason = served(self.port, raw, timeout=5.0)
            if ok:
                return time.perf_counter() - started
            time.sleep(0.05)
        raise RuntimeError(f"litellm did not serve within {timeout:.0f}s ({reason}); {self.log_tail()}")

    def stop(self) -> None:
        """Stop the proxy."""
        if self.proc is not None:
            self.procs.stop(self.proc)
            self.proc = None

    def log_tail(self, lines: int = 6) -> str:
        """The last lines of the LiteLLM log."""
        path = self.procs.log_dir / "litellm.log"
        try:
            return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])[:600]
        except OSError:
            return "(no log)"
