"""``python -m bench [--smoke] [--only NAMES] [--profile] [--no-litellm] [--out DIR]``.

Runs the scenarios in order, each isolated (a crash in one is recorded and
the rest still run), then writes ``latest.md`` and ``latest.json`` (a full
run of every scenario), ``smoke.*`` (``--smoke``) or ``partial.*`` (``--only``).  Exit
status: 0 unless a scenario crashed (timings never fail the run), 130 when
interrupted.  Every process started is ended in ``finally``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from bench import SCENARIOS, memory, report, scenarios, stats
from bench.context import Bench, Plan, result
from bench.gateway_env import Gateway
from bench.litellm_env import LiteLLM, ensure_installed
from bench.proc import Processes, affinity_of, free_port, placement_cores, port_open, raise_own_nofile, wait_until

RESULTS = Path(__file__).resolve().parent / "results"
GATEWAY_PORT = 18317

RUNNERS: dict[str, Callable[[Bench], dict[str, Any]]] = {
    "cold-start": scenarios.cold_start,
    "latency": scenarios.latency,
    "large-body": scenarios.large_body,
    "streaming": scenarios.streaming,
    "translation": scenarios.translation,
    "throughput": scenarios.throughput,
    "memory": memory.memory,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench", description="polyrelay benchmark suite")
    parser.add_argument("--smoke", action="store_true", help="short CI run: tiny counts, no LiteLLM")
    parser.add_argument("--only", action="append", default=[], metavar="SCENARIO",
                        help=f"run only these (repeat or comma-separate): {', '.join(SCENARIOS)}")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM in the throughput scenario")
    parser.add_argument("--profile", action="store_true",
                        help="also record py-spy profiles under scenario 2 and 4 load")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory (default bench/results)")
    args = parser.parse_args(argv)
    only = [name.strip() for item in args.only for name in item.split(",") if name.strip()]
    unknown = [n for n in only if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    args.selected = [n for n in SCENARIOS if not only or n in only]
    return args


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def start_simulator(procs: Processes, plan: Plan, core: int) -> int:
    """Start the upstream simulator on ``core``; its port."""
    port = free_port()
    proc = procs.python_module("bench.upstream", ["--port", str(port), "--deltas", str(plan.deltas),
                                                  "--interval-ms", str(plan.interval_ms)], "upstream", core,
                               nofile=None)
    if not wait_until(lambda: port_open(port) or proc.poll() is not None, timeout=20, step=0.02) or proc.poll():
        raise RuntimeError(f"the upstream simulator did not start (see {procs.log_dir / 'upstream.log'})")
    return port


def placement_text(b: Bench, sim_pid: int | None) -> str:
    """The placement as the kernel reports it for the processes started."""
    gw = affinity_of(b.gateway.pid) if b.gateway.alive() else str(b.gateway_core)
    me = affinity_of(os.getpid())
    text = (f"gateway on CPU {gw} (taskset -c {b.gateway_core}); LiteLLM on CPU {b.gateway_core} (taskset); "
            f"upstream simulator, load generator, py-spy and this orchestrator on CPU {me} "
            f"(os.sched_setaffinity)")
    if sim_pid:
        text += f"; simulator pid reports CPU {affinity_of(sim_pid)}"
    if b.gateway_core == b.load_core:
        text += " — only one CPU available: gateway and load share it"
    return text


def run_scenario(name: str, b: Bench, log_dir: Path) -> dict[str, Any]:
    """Run one scenario; an exception becomes an ``error`` result with the traceback logged."""
    started = time.monotonic()
    b.current = name
    print(f"[bench] {name} …", flush=True)
    try:
        res = RUNNERS[name](b)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        (log_dir / f"{name}.traceback.txt").write_text(traceback.format_exc())
        res = result(name)
        res["status"] = "error"
        res["reason"] = f"{exc.__class__.__name__}: {exc}"[:500]
    res["seconds"] = time.monotonic() - started
    noise = b.noise.get(name, [])
    if noise:
        res["foreign_cpu"] = {"median": stats.median(noise), "max": max(noise), "runs": len(noise)}
    speed = b.speed.get(name, [])
    if speed:
        res["cpu_speed"] = {"median": stats.median(speed), "min": min(speed), "runs": len(speed)}
    status = res["status"] + (f" ({res['reason']})" if res["reason"] else "")
    print(f"[bench] {name}: {status} in {res['seconds']:.1f} s", flush=True)
    return res


def main(argv: list[str] | None = None) -> int:
    """Run the selected scenarios and write the results."""
    args = parse_args(argv)
    plan = Plan.for_smoke() if args.smoke else Plan.for_full()
    if args.no_litellm:
        plan.litellm = False
    out_dir: Path = args.out
    log_dir = out_dir / "logs"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    gateway_core, load_core = placement_cores()
    os.sched_setaffinity(0, {load_core})
    raise_own_nofile()
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    workdir = Path(tempfile.mkdtemp(prefix="polyrelay-bench-"))
    procs = Processes(log_dir)
    started = time.monotonic()
    data: dict[str, Any] = {"started": report.now_text(), "mode": "smoke" if plan.smoke else "full",
                            "machine": report.machine(), "plan": vars(plan), "scenarios": [], "targets": [],
                            "notes": [], "placement": {"text": "not started"}}
    interrupted = False
    b: Bench | None = None
    try:
        litellm: LiteLLM | None = None
        litellm_reason = ""
        if "throughput" in args.selected and plan.litellm:
            print("[bench] installing LiteLLM (first run only) …", flush=True)
            ok, detail = ensure_installed(log_dir / "litellm-install.log")
            litellm_reason = "" if ok else f"LiteLLM unavailable: {detail}"
        elif "throughput" in args.selected:
            litellm_reason = "skipped (--smoke or --no-litellm)"
        sim_port = start_simulator(procs, plan, load_core)
        sim_pid = procs.started[-1].pid
        gateway = Gateway(procs, workdir, free_port(GATEWAY_PORT), sim_port, gateway_core)
        if "throughput" in args.selected and plan.litellm and not litellm_reason:
            litellm = LiteLLM(procs, workdir, free_port(), sim_port, gateway_core)
        b = Bench(procs=procs, plan=plan, workdir=workdir, gateway_core=gateway_core, load_core=load_core,
                  sim_port=sim_port, gateway=gateway, litellm=litellm)
        for name in args.selected:
            res = run_scenario(name, b, log_dir)
            data["scenarios"].append(res)
            if b.gateway.alive():
                data["placement"] = {"text": placement_text(b, sim_pid), "gateway": b.gateway_core,
                                     "load": b.load_core}
        if args.profile:
            from bench.profiling import profile

            print("[bench] profiling with py-spy …", flush=True)
            try:
                data["profile"] = profile(b, out_dir)
            except Exception as exc:
                (log_dir / "profile.traceback.txt").write_text(traceback.format_exc())
                data["profile"] = {"status": "error", "reason": f"{exc.__class__.__name__}: {exc}"}
        litellm_info: dict[str, Any] = {"available": False, "reason": litellm_reason}
        if litellm is not None:
            if b.litellm_problem:
                litellm_info["reason"] = b.litellm_problem
            else:
                litellm_info = {"available": True, **litellm.describe()}
        data["litellm"] = litellm_info
        data["notes"] += b.notes
        data["gateway_sources"] = sorted(set(b.gateway.fingerprints))
        if len(data["gateway_sources"]) > 1:
            data["notes"].append("the gateway's source files changed during this run (the tree is shared with "
                                 "other editors): figures may mix versions " + ", ".join(data["gateway_sources"]))
    except KeyboardInterrupt:
        interrupted = True
        data["notes"].append("interrupted: partial results")
        print("[bench] interrupted; stopping processes …", flush=True)
    except Exception as exc:
        (log_dir / "bench.traceback.txt").write_text(traceback.format_exc())
        data["notes"].append(f"harness error: {exc.__class__.__name__}: {exc}")
        data["scenarios"].append({**result("harness"), "status": "error", "reason": str(exc)[:500]})
        print(f"[bench] harness error: {exc}", file=sys.stderr, flush=True)
    finally:
        procs.close()
        shutil.rmtree(workdir, ignore_errors=True)
    _merge_litellm_cold_start(data)
    data["targets"] = [t for res in data["scenarios"] for t in res.get("targets", [])]
    data["duration_s"] = time.monotonic() - started
    stem = "smoke" if plan.smoke else ("latest" if args.selected == list(SCENARIOS) else "partial")
    md, js = report.write(data, out_dir, stem)
    print(md.read_text())
    print(f"[bench] wrote {md} and {js}", flush=True)
    if interrupted:
        return 130
    crashed = [r["name"] for r in data["scenarios"] if r["status"] == "error"]
    if crashed:
        print(f"[bench] crashed: {', '.join(crashed)} (tracebacks in {log_dir})", file=sys.stderr)
        return 1
    return 0


def _merge_litellm_cold_start(data: dict[str, Any]) -> None:
    """Show LiteLLM's start-up time (measured in the throughput scenario) beside the gateway's."""
    tp = next((r for r in data["scenarios"] if r["name"] == "throughput"), None)
    cold = next((r for r in data["scenarios"] if r["name"] == "cold-start"), None)
    if not tp or not cold or not cold["rows"]:
        return
    seconds = tp.get("details", {}).get("litellm_start_s")
    if isinstance(seconds, float) and seconds == seconds:
        one = {"n": 1, "min": seconds, "p50": seconds, "p99": seconds, "max": seconds, "mean": seconds}
        cold["rows"][0]["litellm"] = one


if __name__ == "__main__":
    raise SystemExit(main())
