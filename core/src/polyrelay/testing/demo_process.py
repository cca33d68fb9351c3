"""``polyrelay serve --demo`` as its own process, the way a newcomer starts it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import attrs

from polyrelay.testing.gateway import free_port


@attrs.define
class DemoProcess:
    """The running demo: its address and what it printed so far."""

    url: str
    process: subprocess.Popen[bytes]
    out: Path
    err: Path

    def stdout(self) -> str:
        """What the demo printed (the banner and the client set-up)."""
        return self.out.read_text()

    def logs(self) -> str:
        """Its log (standard error)."""
        return self.err.read_text()


@contextlib.contextmanager
def demo_process(workdir: Path, timeout: float = 60.0) -> Iterator[DemoProcess]:
    """Start the demo in ``workdir`` on a free loopback port; stop it with Ctrl+C on exit.

    Waits until it answers ``/healthz`` and has printed the client set-up;
    on exit, asserts that it stopped by itself, with status 0.
    """
    port = free_port()
    out, err = workdir / "demo-stdout.txt", workdir / "demo-stderr.txt"
    env = {k: v for k, v in os.environ.items() if k != "POLYRELAY_CONFIG"}
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "polyrelay.cli", "serve", "--demo", "--port", str(port)],
                                   cwd=workdir, stdout=stdout, stderr=stderr, env=env)
    demo = DemoProcess(f"http://127.0.0.1:{port}", process, out, err)
    try:
        deadline = time.monotonic() + timeout
        while "google.genai.Client(" not in demo.stdout():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the demo did not start: " + demo.logs()[-2000:])
            time.sleep(0.05)
        with urllib.request.urlopen(f"{demo.url}/healthz", timeout=5) as answer:
            assert answer.status == 200
        yield demo
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0, demo.logs()[-2000:]
