"""Scenario 6: idle RSS, RSS with many open idle streams, RSS growth over a soak."""

from __future__ import annotations

import json
import math
import select
import subprocess
import time
from typing import Any

from bench import stats
from bench.context import Bench, check_errors, one, result, target
from bench.gateway_env import served
from bench.payloads import request_for
from bench.proc import close_wait_count, nofile_of, rss_kb
from bench.scenarios import probe_lane

# -- 6. memory ----------------------------------------------------------------------------------------


def _settled_rss(pid: int, seconds: float = 1.0) -> int:
    time.sleep(seconds)
    return rss_kb(pid)


def _warm(b: Bench, requests: int) -> None:
    raw = request_for(b.target("gateway"), close=True)
    for _ in range(requests):
        served(b.gateway.port, raw)


def memory(b: Bench) -> dict[str, Any]:
    """Scenario 6: idle RSS, RSS with many idle streams, RSS growth over a soak."""
    res = result("memory")
    # Idle: a fresh process, a few requests, a second to settle.
    b.gateway.restart()
    rss_start = rss_kb(b.gateway.pid)
    _warm(b, 20)
    idle = _settled_rss(b.gateway.pid)
    # Soak: mixed traffic in chunks, RSS after each chunk.
    mix = [b.target("gateway")] * 3 + [b.target("gateway", stream=True)]
    if b.lane_ok is not False and not probe_lane(b):
        mix.append(b.target("gateway", "anthropic"))
    soak = _soak(b, mix)
    xs, ys = soak["requests"], soak["rss_kb"]
    done, soak_errors, first_error = soak["done"], soak["errors"], soak["first_error"]
    growth = stats.slope(xs[1:], ys[1:]) * 100_000 if len(xs) > 2 else math.nan
    # Idle streams on a fresh process.
    held = _idle_streams(b)
    res["rows"] += [
        {"metric": "RSS idle (MB)", "unit": "MB", "gateway": one(idle / 1024),
         "note": f"after 20 requests; {rss_start / 1024:.1f} MB right after start"},
        {"metric": f"RSS with {held['reached']:,} open idle streams (MB)", "unit": "MB",
         "gateway": one(held["rss_held_kb"] / 1024),
         "note": f"baseline {held['rss_before_kb'] / 1024:.1f} MB; {held['rss_after_kb'] / 1024:.1f} MB after "
                 "they closed"},
        {"metric": "RSS per idle stream (KB)", "unit": "KB", "gateway": one(held["per_stream_kb"]),
         "note": held["note"]},
        {"metric": "RSS growth per 100k requests (MB)", "unit": "MB", "gateway": one(growth / 1024),
         "note": (f"{done:,} mixed requests in {soak['seconds']:.0f} s over {b.plan.soak_concurrency} kept-alive "
                  f"connections; RSS {ys[0] / 1024:.1f} → {ys[-1] / 1024:.1f} MB; slope after the first chunk")
                 if ys else ""},
        {"metric": "client-closed connections still open 1 s later", "unit": "count",
         "gateway": one(soak["close_wait"]),
         "note": f"of {b.plan.soak_concurrency * len(mix)} the soak client closed (CLOSE-WAIT on the gateway's port)"},
    ]
    mix_names = [t["payload"] + (" stream" if t["stream"] else "") for t in mix]
    res["details"] = {"rss_after_start_kb": rss_start, "rss_idle_kb": idle, "idle_streams": held,
                      "soak_requests": xs, "soak_rss_kb": ys, "soak_close_wait": soak["close_wait"],
                      "soak_errors": soak_errors, "soak_first_error": first_error, "soak_mix": mix_names}
    res["targets"] += [
        target("rss-idle", "idle RSS", "≤ 80 MB", idle / 1024, "MB", idle / 1024 <= 80),
        target("rss-stream", "RSS per idle stream", "≤ 20 KB", held["per_stream_kb"], "KB",
               held["per_stream_kb"] <= 20, held["note"]),
    ]
    if held["reached"] == 0:
        res["status"] = "failed"
        res["reason"] = f"no idle stream could be opened: {held['failures']}"
    check_errors(res, soak_errors, done + soak_errors, f"soak requests failed ({first_error})")
    return res


def _soak(b: Bench, mix: list[dict[str, Any]]) -> dict[str, Any]:
    """Mixed traffic in chunks over kept-alive connections; RSS after each chunk."""
    p = b.plan
    chunk = max(1, p.soak_total // p.soak_chunks)
    spec = {"mode": "soak", "mix": mix, "concurrency": p.soak_concurrency, "chunk": chunk, "chunks": p.soak_chunks}
    proc = b.procs.python_module("bench.load", [], "load-soak", b.load_core, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE)
    out: dict[str, Any] = {"requests": [], "rss_kb": [], "done": 0, "errors": 0, "first_error": "", "close_wait": 0}
    started = time.monotonic()
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps(spec) + "\n").encode())
        proc.stdin.flush()
        deadline = started + 300 * p.soak_chunks
        while time.monotonic() < deadline:
            readable, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            line = proc.stdout.readline() if readable else b""
            if line.startswith(b"CHUNK "):
                report = json.loads(line[6:])
                out["requests"].append(report["done"])
                out["rss_kb"].append(_settled_rss(b.gateway.pid, 0.3))
                proc.stdin.write(b"next\n" if report["index"] + 1 < p.soak_chunks else b"stop\n")
                proc.stdin.flush()
            elif line.startswith(b"RESULT "):
                out.update({k: v for k, v in json.loads(line[7:]).items() if k in ("done", "errors", "first_error")})
                break
            elif not line:
                break
        proc.wait(timeout=30)
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        out["first_error"] = out["first_error"] or repr(exc)
    finally:
        b.procs.stop(proc)
    out["seconds"] = time.monotonic() - started
    time.sleep(1.0)
    out["close_wait"] = close_wait_count(b.gateway.port)
    return out


def _idle_streams(b: Bench) -> dict[str, Any]:
    """Open N silent streams through a fresh gateway; RSS before, while held, after."""
    b.gateway.restart()
    _warm(b, 50)
    limit = nofile_of(b.gateway.pid)
    cap = max(0, (limit - 100) // 2)  # each stream holds a client and an upstream socket
    want = b.plan.idle_streams
    count = min(want, cap) if limit else want
    note = ""
    if count < want:
        note = (f"{want:,} not reachable: the gateway's open-file limit is {limit:,} (hard limit, cannot be raised "
                f"here) and each stream holds 2 sockets")
    before = _settled_rss(b.gateway.pid, 0.5)
    spec = {"mode": "idle", "target": b.target("gateway", profile="hold", stream=True), "count": count,
            "opening_concurrency": 200, "open_seconds": 150 if not b.plan.smoke else 30, "hold_seconds": 120}
    proc = b.procs.python_module("bench.load", [], "load-idle", b.load_core, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE)
    ready: dict[str, Any] = {"reached": 0, "failures": ["no READY line"]}
    held_rss = 0
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps(spec) + "\n").encode())
        proc.stdin.flush()
        deadline = time.monotonic() + spec["open_seconds"] + 60
        while time.monotonic() < deadline:
            readable, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not readable:
                break
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith(b"READY "):
                ready = json.loads(line[6:])
                break
        time.sleep(1.0)
        for _ in range(3):
            held_rss = max(held_rss, rss_kb(b.gateway.pid))
            time.sleep(0.2)
        proc.stdin.write(b"close\n")
        proc.stdin.flush()
        proc.wait(timeout=60)
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        ready.setdefault("failures", []).append(repr(exc))
    finally:
        b.procs.stop(proc)
    after = _settled_rss(b.gateway.pid, 2.0)
    reached = int(ready.get("reached", 0))
    per = (held_rss - before) / reached if reached else math.nan
    if reached < count:
        note = (note + "; " if note else "") + f"only {reached:,} of {count:,} opened"
    # A fresh process for whatever runs next.
    b.gateway.restart()
    return {"wanted": want, "attempted": count, "reached": reached, "rss_before_kb": before, "rss_held_kb": held_rss,
            "rss_after_kb": after, "per_stream_kb": per, "nofile": limit, "note": note,
            "failures": ready.get("failures", []), "open_s": ready.get("open_s")}
