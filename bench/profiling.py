"""``--profile``: sample the gateway with py-spy under scenario 2 and scenario 4 load.

py-spy writes collapsed stacks (``--format raw``, one ``frame;frame;… count``
line per distinct stack, aggregated by function with ``--function``); this
module turns them into self-time and inclusive-time tables.  Idle samples
(the event loop waiting in ``epoll``) are excluded by py-spy, so percentages
are of busy samples.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.context import Bench


def find_py_spy() -> str | None:
    """py-spy next to this interpreter, else on PATH."""
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def package_of(frame: str) -> str:
    """The package a ``func (path:line)`` frame belongs to (first path part)."""
    start = frame.rfind("(")
    path = frame[start + 1:].rstrip(")").rsplit(":", 1)[0] if start >= 0 else frame
    if path.startswith("<"):
        return "python internals"
    head = path.split("/", 1)[0]
    return head[:-3] if head.endswith(".py") else head


def summarize(raw: str, top: int = 25) -> dict[str, Any]:
    """Self and inclusive sample shares per function, self share per package."""
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    pkg_counts: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        self_counts[frames[-1]] += count
        pkg_counts[package_of(frames[-1])] += count
        for frame in set(frames):
            incl_counts[frame] += count

    def table(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, 100.0 * n / total) for name, n in counter.most_common(top)] if total else []

    entry = ("polyrelay/cli.py", "polyrelay/server.py", "(polyrelay:")
    polyrelay_incl = Counter({k: v for k, v in incl_counts.items()
                              if "polyrelay/" in k and not any(e in k for e in entry)})
    return {"samples": total, "self": table(self_counts), "inclusive": table(incl_counts),
            "inclusive_polyrelay": table(polyrelay_incl), "self_by_package": table(pkg_counts)}


def render(name: str, summary: dict[str, Any]) -> str:
    """A plain-text report of one profile."""
    lines = [f"# py-spy profile: {name} ({summary['samples']} busy samples)", ""]
    for key, title in (("self_by_package", "self time by package"), ("self", "self time (leaf function)"),
                       ("inclusive_polyrelay", "inclusive time, polyrelay functions"),
                       ("inclusive", "inclusive time, all functions")):
        lines.append(f"## {title}")
        lines += [f"{pct:6.1f}%  {frame}" for frame, pct in summary[key]]
        lines.append("")
    return "\n".join(lines)


def profile(b: Bench, out_dir: Path) -> dict[str, Any]:
    """Record both profiles; returns their summaries (or the reason they could not be taken)."""
    spy = find_py_spy()
    if spy is None:
        return {"status": "skipped", "reason": "py-spy not installed (pip install py-spy)"}
    b.ensure_gateway()
    seconds = b.plan.profile_seconds
    loads = {
        "throughput": {"mode": "throughput", "mix": [b.target("gateway")], "concurrency": 64,
                       "seconds": seconds + 2, "warmup": 0.0},
        "translation": {"mode": "throughput", "mix": [b.target("gateway", "anthropic")], "concurrency": 32,
                        "seconds": seconds + 2, "warmup": 0.0},
    }
    results: dict[str, Any] = {"status": "ok", "reason": "", "profiles": {}}
    for name, spec in loads.items():
        raw_path = out_dir / f"profile-{name}.raw.txt"
        raw_path.unlink(missing_ok=True)
        proc = b.procs.spawn([spy, "record", "--pid", str(b.gateway.pid), "--duration", str(int(seconds)),
                              "--rate", "250", "--format", "raw", "--function", "--nonblocking",
                              "--output", str(raw_path)], f"py-spy-{name}", core=b.load_core)
        try:
            time.sleep(0.5)
            load = b.load(spec, timeout=seconds + 90)
            proc.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            results["profiles"][name] = {"error": "py-spy did not finish"}
            continue
        finally:
            b.procs.stop(proc)
        if not raw_path.exists():
            results["profiles"][name] = {"error": f"py-spy wrote nothing (see logs/py-spy-{name}.log)"}
            continue
        summary = summarize(raw_path.read_text(errors="replace"))
        summary["load"] = {"requests": load["done"], "errors": load["errors"], "frames": load["frames"]}
        (out_dir / f"profile-{name}.txt").write_text(render(name, summary))
        results["profiles"][name] = summary
    return results
