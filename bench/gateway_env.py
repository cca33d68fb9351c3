"""The gateway under test: its config, its process, readiness and cold start."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import payloads
from bench.httpclient import request_once
from bench.proc import Processes, nofile_hard

#: Model aliases the bench config defines, by simulator profile.
MODELS = {"default": "bench", "paced": "bench-paced", "hold": "bench-hold", "long": "bench-long"}
PREFIX = {"default": "", "paced": "/paced", "hold": "/hold", "long": "/long"}


def config_text(port: int, sim_port: int) -> str:
    """The gateway's YAML: one OpenAI-compatible provider per simulator profile."""
    blocks = []
    for profile, alias in MODELS.items():
        blocks.append(
            f"  - name: sim-{profile}\n"
            f"    base-url: http://127.0.0.1:{sim_port}{PREFIX[profile]}/v1\n"
            f"    api-key-entries:\n"
            f"      - api-key: {payloads.API_KEY}\n"
            f"    models:\n"
            f"      - name: bench-model\n"
            f"        alias: {alias}\n"
        )
    return (
        "host: 127.0.0.1\n"
        f"port: {port}\n"
        "auth-dir: /tmp/nonexistent-bench-auth\n"
        "streaming: {keepalive-seconds: 0}\n"
        # One load client (one address) holds ~10,000 streams in scenario 6;
        # the default per-client cap (64 in flight) would refuse all but 64.
        # Releases that predate the cap ignore the key with a warning.
        "client-limits: {concurrent-requests: 0}\n"
        "openai-compatibility:\n" + "".join(blocks)
    )


def gateway_command(config: Path, python: Path | None = None) -> list[str]:
    """``polyrelay serve --config FILE`` from ``python``'s environment (default: the running interpreter's)."""
    python = python or Path(sys.executable)
    script = python.parent / "polyrelay"
    if script.exists():
        return [str(script), "serve", "--config", str(config)]
    return [str(python), "-c", "import sys; from polyrelay.cli import main; sys.exit(main())",
            "serve", "--config", str(config)]


def probe_request(port: int, profile: str = "default") -> bytes:
    """A 1 KB non-stream chat request through the gateway (``Connection: close``)."""
    target = {"port": port, "path": "/v1/chat/completions", "payload": "chat1k", "model": MODELS[profile]}
    return payloads.request_for(target, close=True)


def served(port: int, raw: bytes, timeout: float = 2.0) -> tuple[bool, str]:
    """Whether one request is answered 200 with a body; and a reason when not."""
    try:
        status, body = request_once(port, raw, timeout)
    except OSError as exc:
        return False, f"{exc.__class__.__name__}: {exc}"
    if status == 200 and body:
        return True, ""
    return False, f"HTTP {status}: {body[:300]!r}"


def source_fingerprint() -> str:
    """A short hash of the installed ``polyrelay`` package's Python sources.

    Taken at every gateway start, so a run notices when the code under test
    changed between starts (the working tree is shared with other editors).
    """
    spec = importlib.util.find_spec("polyrelay")
    if spec is None or not spec.submodule_search_locations:
        return "unknown"
    digest = hashlib.sha1()
    for root in spec.submodule_search_locations:
        for path in sorted(Path(root).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


class Gateway:
    """One running gateway process."""

    def __init__(self, procs: Processes, workdir: Path, port: int, sim_port: int, core: int | None) -> None:
        self.procs = procs
        self.port = port
        self.core = core
        self.config = workdir / "polyrelay.yaml"
        self.config.write_text(config_text(port, sim_port))
        self.proc: subprocess.Popen[Any] | None = None
        self.starts = 0
        #: :func:`source_fingerprint` at each start.
        self.fingerprints: list[str] = []

    @property
    def pid(self) -> int:
        """The gateway's process id."""
        if self.proc is None:
            raise RuntimeError("gateway not started")
        return self.proc.pid

    def alive(self) -> bool:
        """Whether the process is running."""
        return self.proc is not None and self.proc.poll() is None

    def spawn(self) -> subprocess.Popen[Any]:
        """Start the process (pinned, NOFILE raised to the hard limit) without waiting."""
        env = dict(os.environ)
        env.pop("POLYRELAY_CONFIG", None)
        self.starts += 1
        self.fingerprints.append(source_fingerprint())
        self.proc = self.procs.spawn(gateway_command(self.config), "gateway", core=self.core,
                                     nofile=nofile_hard(), env=env)
        return self.proc

    def start(self, timeout: float = 30.0) -> float:
        """Start and wait until it serves a request; the seconds from spawn to first 200."""
        started = time.perf_counter()
        self.spawn()
        raw = probe_request(self.port)
        deadline = time.monotonic() + timeout
        reason = ""
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode} at start-up: {self.log_tail()}")
            ok, reason = served(self.port, raw, timeout=2.0)
            if ok:
                return time.perf_counter() - started
            time.sleep(0.002)
        raise RuntimeError(f"gateway did not serve within {timeout:.0f}s ({reason}); {self.log_tail()}")

    def stop(self) -> None:
        """Stop the process."""
        if self.proc is not None:
            self.procs.stop(self.proc)
            self.proc = None

    def restart(self) -> float:
        """A fresh process; the cold-start seconds."""
        self.stop()
        time.sleep(0.2)
        return self.start()

    def log_tail(self, lines: int = 12) -> str:
        """The last lines of the gateway log (for failure reasons)."""
        path = self.procs.log_dir / "gateway.log"
        try:
            return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
