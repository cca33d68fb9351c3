"""What every scenario shares: the plan (counts), the bench context and result helpers.

Rows carry ``min`` / ``p50`` / ``p99`` for the gateway, the direct path
(client → simulator, the baseline measured in the same run) and, where
relevant, LiteLLM; ``added`` is gateway minus direct at each statistic.
Targets carry the measured figure and whether it meets the threshold.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import stats
from bench.gateway_env import MODELS, PREFIX, Gateway
from bench.litellm_env import LiteLLM
from bench.proc import CLOCK_TICKS, Processes, busy_ticks, cpu_speed, own_cpu_seconds, run_load

US_PER_MS = 1000.0


@dataclass
class Plan:
    """Counts and durations; :meth:`for_full` for ``make bench``, :meth:`for_smoke` for CI."""

    smoke: bool
    cold_runs: int
    lat_rounds: int
    lat_requests: int
    lat_warmup: int
    cold_rounds: int
    cold_requests: int
    large_rounds: int
    large_requests: int
    stream_rounds: int
    stream_per_round: int
    interval_ms: float
    deltas: int
    tp_rounds: int
    tp_seconds: float
    tp_warmup: float
    tp_concurrency: int
    tr_rounds: int
    tr_seconds: float
    tr_concurrency: int
    idle_streams: int
    soak_total: int
    soak_chunks: int
    soak_concurrency: int
    litellm: bool
    profile_seconds: float

    @classmethod
    def for_full(cls) -> Plan:
        """The full run (about 8 minutes on 2 cores, plus a first LiteLLM install)."""
        return cls(smoke=False, cold_runs=5, lat_rounds=7, lat_requests=300, lat_warmup=100,
                   cold_rounds=5, cold_requests=40, large_rounds=5,
                   large_requests=20, stream_rounds=5, stream_per_round=4, interval_ms=10.0, deltas=64,
                   tp_rounds=5, tp_seconds=6.0, tp_warmup=1.0, tp_concurrency=64, tr_rounds=3, tr_seconds=5.0,
                   tr_concurrency=32, idle_streams=10_000, soak_total=50_000, soak_chunks=10, soak_concurrency=32,
                   litellm=True, profile_seconds=12.0)

    @classmethod
    def for_smoke(cls) -> Plan:
        """The CI run: same scenarios, tiny counts, no LiteLLM."""
        return cls(smoke=True, cold_runs=2, lat_rounds=2, lat_requests=40, lat_warmup=10,
                   cold_rounds=1, cold_requests=8, large_rounds=1,
                   large_requests=3, stream_rounds=2, stream_per_round=1, interval_ms=2.0, deltas=64,
                   tp_rounds=2, tp_seconds=1.0, tp_warmup=0.3, tp_concurrency=64, tr_rounds=1, tr_seconds=1.0,
                   tr_concurrency=16, idle_streams=1000, soak_total=3000, soak_chunks=3, soak_concurrency=32,
                   litellm=False, profile_seconds=4.0)


@dataclass
class Bench:
    """What every scenario needs: processes, placement, the gateway, the simulator."""

    procs: Processes
    plan: Plan
    workdir: Path
    gateway_core: int
    load_core: int
    sim_port: int
    gateway: Gateway
    litellm: LiteLLM | None = None
    litellm_problem: str = ""
    relay_port: int = 0
    notes: list[str] = field(default_factory=list)
    lane_ok: bool | None = None
    #: Scenario running now, and per scenario the CPU (in cores) other processes used during each load run.
    current: str = ""
    noise: dict[str, list[float]] = field(default_factory=dict)
    #: Per scenario the gateway core's speed (:func:`bench.proc.cpu_speed`) before each load run.
    speed: dict[str, list[float]] = field(default_factory=dict)

    def ensure_gateway(self) -> None:
        """Start the gateway if it is not running (records a note when it had died)."""
        if self.gateway.alive():
            return
        if self.gateway.proc is not None:
            self.notes.append(f"gateway had exited ({self.gateway.proc.returncode}); restarted")
        self.gateway.start()

    def load(self, spec: dict[str, Any], timeout: float) -> dict[str, Any]:
        """One load-generator run on the load core, recording CPU used by others meanwhile."""
        self.speed.setdefault(self.current, []).append(cpu_speed(self.gateway_core))
        cpus = {self.gateway_core, self.load_core}
        ticks, ours, started = busy_ticks(cpus), own_cpu_seconds(self.procs), time.monotonic()
        out = run_load(self.procs, spec, self.load_core, timeout)
        elapsed = time.monotonic() - started
        busy = (busy_ticks(cpus) - ticks) / CLOCK_TICKS
        foreign = max(0.0, busy - (own_cpu_seconds(self.procs) - ours))
        self.noise.setdefault(self.current, []).append(foreign / elapsed if elapsed > 0 else 0.0)
        return out

    def target(self, side: str, payload: str = "chat1k", profile: str = "default", stream: bool = False,
               stamps: bool = False) -> dict[str, Any]:
        """A target dict for the load generator: ``side`` is gateway, direct or litellm."""
        if side == "gateway":
            path = "/v1/messages" if payload == "anthropic" else "/v1/chat/completions"
            spec = {"port": self.gateway.port, "path": path, "model": MODELS[profile]}
        elif side == "direct":
            spec = {"port": self.sim_port, "path": f"{PREFIX[profile]}/v1/chat/completions", "model": "bench-model"}
        elif side == "relay" and self.relay_port:
            spec = {"port": self.relay_port, "path": f"{PREFIX[profile]}/v1/chat/completions", "model": "bench-model"}
        elif side == "litellm" and self.litellm is not None:
            spec = {"port": self.litellm.port, "path": "/v1/chat/completions", "model": "bench"}
        else:
            raise ValueError(f"unknown side {side!r}")
        return {"name": side, "payload": payload, "stream": stream or payload == "anthropic", "stamps": stamps,
                **spec}


def result(name: str) -> dict[str, Any]:
    """An empty scenario result."""
    return {"name": name, "status": "ok", "reason": "", "rows": [], "targets": [], "details": {}}


def ms_summary(values_us: list[int]) -> dict[str, float]:
    return stats.summary([v / US_PER_MS for v in values_us])


def added(gw: dict[str, float], direct: dict[str, float]) -> dict[str, float]:
    return {k: gw[k] - direct[k] for k in ("min", "p50", "p99")}


def target(tid: str, text: str, threshold: str, value: float, unit: str, met: bool | None,
           note: str = "") -> dict[str, Any]:
    """A target line: ``met`` is None when it could not be measured."""
    if not stats.finite(value):
        met = None
    return {"id": tid, "text": text, "threshold": threshold, "value": value, "unit": unit, "met": met,
            "note": note}


def check_errors(res: dict[str, Any], errors: int, total: int, what: str) -> None:
    if total == 0 or errors > max(1, total // 100):
        res["status"] = "failed"
        res["reason"] = f"{what}: {errors} errors in {total} requests"


def one(value: float) -> dict[str, float]:
    """A summary for a single measured value."""
    return {"n": 1, "min": value, "p50": value, "p99": value, "max": value, "mean": value}
