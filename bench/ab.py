"""``python -m bench.ab OTHER [--lane LANE] [--rounds N] [--seconds S]``: this checkout against another.

A full ``make bench`` per tree compares runs minutes apart, and on a shared
VM the core's speed drifts by more than the change being measured.  Here
both gateways run at once, pinned to the same core and serving one upstream
simulator, and the load generator alternates short rounds between them
(this, other; other, this; ...), so drift hits both alike.  Each round
pair gives a ratio; the median and range of those ratios are the result,
with the gateway CPU time per request beside them (CPU-normalised, the
steadier figure).

``OTHER`` is a checkout: its own ``.venv`` when it has one, else this
interpreter with ``OTHER/core/src`` first on the path (enough for the
OpenAI-compatible lanes, which need no provider package).  Lanes:
``nonstream`` (1 KB, c=64), ``stream`` (pass-through SSE, c=32),
``translated`` (Anthropic in, OpenAI upstream, c=32), ``large`` (1 MB
pass-through, c=2).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.gateway_env import MODELS, config_text, gateway_command
from bench.proc import Processes, cpu_seconds, free_port, placement_cores, port_open, run_load, wait_until

HERE = Path(__file__).resolve().parent.parent
LANES: dict[str, dict[str, Any]] = {
    "nonstream": {"path": "/v1/chat/completions", "payload": "chat1k", "stream": False, "concurrency": 64},
    "stream": {"path": "/v1/chat/completions", "payload": "chat1k", "stream": True, "concurrency": 32},
    "translated": {"path": "/v1/messages", "payload": "anthropic", "stream": True, "concurrency": 32},
    "large": {"path": "/v1/chat/completions", "payload": "chat1m", "stream": False, "concurrency": 2},
}


def start_gateway(procs: Processes, name: str, tree: Path, config: str, core: int, port: int) -> int:
    """Start ``tree``'s gateway on ``core``; its pid once it accepts connections."""
    env = dict(os.environ)
    python = tree / ".venv" / "bin" / "python"
    if not python.exists():
        python = Path(sys.executable)
        env["PYTHONPATH"] = str(tree / "core" / "src") + os.pathsep + env.get("PYTHONPATH", "")
    path = Path(procs.log_dir) / f"{name}.yaml"
    path.write_text(config)
    proc = procs.spawn(gateway_command(path, python), name, core=core, env=env)
    if not wait_until(lambda: port_open(port) or proc.poll() is not None, timeout=30, step=0.02) or proc.poll():
        raise RuntimeError(f"the {name} gateway did not start (see {procs.log_dir / (name + '.log')})")
    return proc.pid


def compare(other: Path, lane: str, rounds: int, seconds: float, log_dir: Path) -> dict[str, Any]:
    """Alternate ``rounds`` load rounds per side; ratios are this ÷ other."""
    gateway_core, load_core = placement_cores()
    spec_lane = LANES[lane]
    procs = Processes(log_dir)
    try:
        sim = free_port()
        simulator = procs.python_module("bench.upstream", ["--port", str(sim), "--deltas", "64",
                                                           "--interval-ms", "10"], "upstream", load_core)
        if not wait_until(lambda: port_open(sim) or simulator.poll() is not None, timeout=20, step=0.02):
            raise RuntimeError("the upstream simulator did not start")
        sides: dict[str, tuple[int, int]] = {}
        for name, tree in (("this", HERE), ("other", other)):
            port = free_port()
            sides[name] = (port, start_gateway(procs, name, tree, config_text(port, sim), gateway_core, port))
        rps: dict[str, list[float]] = {name: [] for name in sides}
        cpu_us: dict[str, list[float]] = {name: [] for name in sides}
        for r in range(rounds):
            for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
                port, pid = sides[name]
                target = {"name": name, "port": port, "path": spec_lane["path"], "model": MODELS["default"],
                          "payload": spec_lane["payload"], "stream": spec_lane["stream"], "stamps": False}
                spec = {"mode": "throughput", "mix": [target], "concurrency": spec_lane["concurrency"],
                        "seconds": seconds, "warmup": 0.5}
                before = cpu_seconds(pid)
                out = run_load(procs, spec, load_core, timeout=seconds + 60)
                used = cpu_seconds(pid) - before
                if out["errors"]:
                    raise RuntimeError(f"{name}: {out['errors']} errors ({out['first_error']})")
                rps[name].append(out["rps"])
                cpu_us[name].append(used / max(1, out["done"]) * 1e6)
    finally:
        procs.close()
    ratios = [a / b for a, b in zip(rps["this"], rps["other"], strict=True)]
    cpu_ratios = [a / b for a, b in zip(cpu_us["this"], cpu_us["other"], strict=True)]
    return {"lane": lane, "other": str(other), "rounds": rounds, "seconds": seconds, "rps": rps, "cpu_us": cpu_us,
            "rps_ratio": summary(ratios), "cpu_ratio": summary(cpu_ratios)}


def summary(values: list[float]) -> dict[str, float]:
    """Median, min and max."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("other", type=Path, help="the other checkout (a git worktree of the baseline)")
    parser.add_argument("--lane", choices=sorted(LANES), default="nonstream")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    result = compare(args.other.resolve(), args.lane, args.rounds, args.seconds, log_dir)
    for name in ("this", "other"):
        print(f"{name:5s} req/s median {statistics.median(result['rps'][name]):9,.1f}   "
              f"gateway CPU per request median {statistics.median(result['cpu_us'][name]):8.1f} µs")
    r, c = result["rps_ratio"], result["cpu_ratio"]
    print(f"this ÷ other, per round pair: req/s {r['median']:.3f} ({r['min']:.3f} to {r['max']:.3f}); "
          f"CPU per request {c['median']:.3f} ({c['min']:.3f} to {c['max']:.3f})   [{args.lane}, {args.rounds} rounds]")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
