"""Results: the machine description and the markdown / JSON writers."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.stats import finite

REPO = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    """The ``model name`` from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_total_mb() -> int:
    """Physical memory in MB."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return 0


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_revision() -> str:
    """``HEAD`` of the repository, with ``+dirty`` when core/ has local changes."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "core"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + ("+dirty" if dirty else "")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_mb": mem_total_mb(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "polyrelay": _version("polyrelay"),
        "git": git_revision(),
        "libraries": {d: _version(d) for d in ("hypercorn", "starlette", "aiohttp", "orjson", "h11")},
    }


def _fmt(value: Any, unit: str) -> str:
    if not isinstance(value, (int, float)) or not finite(float(value)):
        return "-"
    if unit in ("req/s", "ev/s"):
        return f"{value:,.0f}"
    if unit in ("MB", "KB"):
        return f"{value:,.1f}"
    if unit == "count":
        return f"{value:,.0f}"
    if unit in ("cores", "x"):
        return f"{value:.2f}"
    if unit == "s":
        return f"{value:.3f}"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:,.1f}"


def _triple(summary: dict[str, float] | None, unit: str) -> str:
    if not summary:
        return ""
    if summary.get("n") == 1:
        return _fmt(summary["p50"], unit)
    return " / ".join(_fmt(summary.get(k), unit) for k in ("min", "p50", "p99"))


def _met(value: bool | None) -> str:
    return {True: "✅ met", False: "❌ not met", None: "- not measured"}[value]


def render_markdown(data: dict[str, Any]) -> str:
    """The human-readable results page."""
    m = data["machine"]
    lines = [
        f"# polyrelay benchmark — {data['started']} ({data['mode']} run, {data['duration_s']:.0f} s)",
        "",
        f"- Machine: {m['nproc']} CPU ({m['cpu_model']}), {m['memory_mb']:,} MB RAM, Linux {m['kernel']}, "
        f"Python {m['python']}",
        f"- polyrelay {m['polyrelay']} at git {m['git']} (sources {', '.join(data.get('gateway_sources') or ['?'])}); "
        + ", ".join(f"{k} {v}" for k, v in m["libraries"].items()),
        f"- Placement: {data['placement']['text']}",
        "",
        "## Results",
        "",
        "min / median / p99 over all samples of all interleaved rounds unless the metric says otherwise; "
        "*added* = polyrelay - direct at the same statistic.",
        "",
        "| Scenario | Metric | polyrelay | direct | LiteLLM | added | ratio | Note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for res in data["scenarios"]:
        if res["status"] in ("failed", "error", "skipped") and not res["rows"]:
            lines.append(f"| {res['name']} | **{res['status']}** | | | | | | {res['reason'][:300]} |")
            continue
        for row in res["rows"]:
            unit = row.get("unit", "")
            ratio = row.get("ratio")
            lines.append(
                f"| {res['name']} | {row['metric']} | {_triple(row.get('gateway'), unit)} | "
                f"{_triple(row.get('direct'), unit)} | {_triple(row.get('litellm'), unit)} | "
                f"{_triple(row.get('added'), unit)} | {_fmt(ratio, 'x') + 'x' if ratio is not None else ''} | "
                f"{row.get('note', '')} |"
            )
        if res["status"] != "ok":
            lines.append(f"| {res['name']} | **{res['status']}** | | | | | | {res['reason'][:300]} |")
    noisy = [f"{r['name']} {r['foreign_cpu']['median']:.2f} (max {r['foreign_cpu']['max']:.2f})"
             for r in data["scenarios"] if r.get("foreign_cpu")]
    if noisy:
        lines += ["", "CPU used by processes other than the bench's own during the load runs, in cores "
                      "(median per scenario; machine noise indicator): " + "; ".join(noisy) + "."]
    speeds = [f"{r['name']} {r['cpu_speed']['median']:.1f} (min {r['cpu_speed']['min']:.1f})"
              for r in data["scenarios"] if r.get("cpu_speed")]
    if speeds:
        lines += ["", "Gateway-core speed before the load runs, iterations of a fixed Python loop per µs (compare "
                      "across runs; lower = the host gave the CPU less): " + "; ".join(speeds) + "."]
    lines += ["", "## Targets", "", "| Target | Threshold | Measured | Result | Note |", "|---|---|---|---|---|"]
    for t in data["targets"]:
        lines.append(f"| {t['text']} | {t['threshold']} | {_fmt(t['value'], t['unit'])} {t['unit']} | "
                     f"{_met(t['met'])} | {t.get('note', '')} |")
    lit = data.get("litellm") or {}
    lines += ["", "## LiteLLM", ""]
    if lit.get("available"):
        lines += [f"- Version {lit['version']}, {lit['workers']} uvicorn worker, pinned like the gateway.",
                  f"- Command: `{' '.join(lit['command'])}`",
                  f"- Environment: `{' '.join(f'{k}={v}' for k, v in lit['env'].items())}`",
                  "- Config:", "", "```yaml", lit["config"].rstrip(), "```"]
    else:
        lines.append(f"- Not measured: {lit.get('reason', 'not requested')}")
    if data.get("profile"):
        lines += ["", "## Profile", ""]
        prof = data["profile"]
        if prof.get("status") != "ok":
            lines.append(f"- {prof.get('status')}: {prof.get('reason')}")
        for name, summary in (prof.get("profiles") or {}).items():
            if "error" in summary:
                lines.append(f"- {name}: {summary['error']}")
                continue
            packages = ", ".join(f"{pkg} {pct:.0f}%" for pkg, pct in summary["self_by_package"][:8])
            lines += [f"### {name} ({summary['samples']} busy samples)", "", f"Self time by package: {packages}.",
                      "", "| self % | function |", "|---|---|"]
            lines += [f"| {pct:.1f} | `{frame}` |" for frame, pct in summary["self"][:15]]
            lines += ["", "| inclusive % | polyrelay function |", "|---|---|"]
            lines += [f"| {pct:.1f} | `{frame}` |" for frame, pct in summary["inclusive_polyrelay"][:12]]
            lines.append("")
    if data.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in data["notes"]]
    return "\n".join(lines) + "\n"


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN/inf become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write(data: dict[str, Any], out_dir: Path, stem: str = "latest") -> tuple[Path, Path]:
    """Write ``{stem}.md`` and ``{stem}.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / f"{stem}.md"
    js = out_dir / f"{stem}.json"
    md.write_text(render_markdown(data))
    js.write_text(json.dumps(_clean(data), indent=1, ensure_ascii=False) + "\n")
    return md, js


def now_text() -> str:
    """The current UTC time for the report heading."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
