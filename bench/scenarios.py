"""Scenarios 1-5 and 7: latency, large body, streaming, translation, throughput, cold start.

Each takes the :class:`~bench.context.Bench` and returns a result dict
(:func:`~bench.context.result`); scenario 6 is in :mod:`bench.memory`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from bench import stats
from bench.context import US_PER_MS, Bench, check_errors, result, target
from bench.context import added as _added
from bench.context import ms_summary as _ms
from bench.httpclient import request_once
from bench.payloads import request_for
from bench.proc import cpu_seconds, free_port, port_open, rss_kb, wait_until

# -- 7. cold start -------------------------------------------------------------------------------


def cold_start(b: Bench) -> dict[str, Any]:
    """Process spawn → first served chat completion, several fresh starts."""
    res = result("cold-start")
    times: list[float] = []
    rss: list[int] = []
    for _ in range(b.plan.cold_runs):
        b.gateway.stop()
        time.sleep(0.3)
        times.append(b.gateway.start())
        rss.append(rss_kb(b.gateway.pid))
    summary = stats.summary(times)
    res["rows"].append({"metric": "process start → first served request (s)", "unit": "s", "gateway": summary,
                        "note": f"{len(times)} fresh starts"})
    res["details"] = {"seconds": times, "rss_after_first_request_kb": rss}
    res["targets"].append(target("cold-start", "cold start", "≤ 1 s (median)", summary["p50"], "s",
                                 summary["p50"] <= 1.0))
    return res


# -- 1 and 5. added latency at concurrency 1 --------------------------------------------------------


@dataclass
class Pairs:
    """Latencies (µs) per side from alternating c=1 runs."""

    samples: dict[str, list[int]]
    overhead_ms: list[float]
    round_added_ms: list[float]
    errors: int


def _collect_pairs(b: Bench, payload: str, sides: list[str], rounds: int, requests: int, warmup: int,
                   gap_ms: float = 0.0) -> Pairs:
    samples: dict[str, list[int]] = {s: [] for s in sides}
    overhead: list[float] = []
    round_added: list[float] = []
    errors = 0
    for r in range(rounds):
        spec = {"mode": "pairs", "requests": requests, "warmup": warmup if r == 0 else max(3, warmup // 10),
                "targets": [b.target(side, payload) for side in sides], "max_seconds": 240, "gap_ms": gap_ms}
        out = b.load(spec, timeout=300)
        for side in sides:
            samples[side] += out["latency_us"][side]
        overhead += out["overhead_ms"]["gateway"]
        errors += sum(out["errors"].values())
        gw, direct = out["latency_us"]["gateway"], out["latency_us"]["direct"]
        if gw and direct:
            round_added.append((stats.median(gw) - stats.median(direct)) / US_PER_MS)
    return Pairs(samples, overhead, round_added, errors)


def _pair_row(metric: str, pairs: Pairs, side: str, note: str) -> dict[str, Any]:
    g, d = _ms(pairs.samples[side]), _ms(pairs.samples["direct"])
    return {"metric": metric, "unit": "ms", "gateway": g, "direct": d, "added": _added(g, d),
            "ratio": g["p50"] / d["p50"] if d["p50"] else math.nan, "note": note}


def _pairs_result(res: dict[str, Any], pairs: Pairs, tid: str, text: str, threshold_ms: float, note: str) -> None:
    row = _pair_row("latency per request (ms)", pairs, "gateway", note)
    res["rows"].insert(0, row)
    if pairs.overhead_ms:
        res["rows"].append({"metric": "gateway's own x-polyrelay-overhead-ms header", "unit": "ms",
                            "gateway": stats.summary(pairs.overhead_ms)})
    res["details"].update({"round_added_p50_ms": pairs.round_added_ms, "errors": pairs.errors,
                           "self_reported_overhead_ms": stats.summary(pairs.overhead_ms)})
    added = row["added"]["p50"]
    res["targets"].append(target(tid, text, f"≤ {threshold_ms:g} ms added (p50)", added, "ms",
                                 added <= threshold_ms))
    total = sum(len(v) for v in pairs.samples.values())
    check_errors(res, pairs.errors, total + pairs.errors, "requests failed")


def latency(b: Bench) -> dict[str, Any]:
    """Scenario 1: 1 KB non-stream request at c=1: gateway, a null relay and direct, hot and after idle gaps."""
    res = result("latency")
    b.ensure_gateway()
    p = b.plan
    port = free_port()
    relay = b.procs.python_module("bench.relay", ["--port", str(port), "--upstream", str(b.sim_port)], "relay",
                                  b.gateway_core)
    sides = ["gateway", "direct"]
    if wait_until(lambda: port_open(port) or relay.poll() is not None, timeout=20, step=0.02) and relay.poll() is None:
        b.relay_port = port
        sides.insert(1, "relay")
    else:
        b.notes.append("the null relay did not start; latency calibration rows omitted")
    try:
        hot = _collect_pairs(b, "chat1k", sides, p.lat_rounds, p.lat_requests, p.lat_warmup)
        cold = _collect_pairs(b, "chat1k", sides, p.cold_rounds, p.cold_requests, 3, gap_ms=20.0)
    finally:
        b.procs.stop(relay)
        b.relay_port = 0
    _pairs_result(res, hot, "latency-c1", "added latency, c=1, 1 KB", 0.5,
                  f"back to back; {p.lat_rounds} rounds x {p.lat_requests} alternating requests per side")
    extra = [_pair_row("latency after 20 ms idle (ms)", cold, "gateway",
                       f"every request preceded by 20 ms idle; {p.cold_rounds} rounds x {p.cold_requests}")]
    if "relay" in sides:
        extra.insert(0, _pair_row("null TCP relay on the gateway core instead of polyrelay (ms)", hot, "relay",
                                  "calibration: the cost of the extra hop and placement alone"))
        extra.append(_pair_row("null relay after 20 ms idle (ms)", cold, "relay", "calibration, idle machine"))
    res["rows"][1:1] = extra
    res["details"]["cold_round_added_p50_ms"] = cold.round_added_ms
    return res


def large_body(b: Bench) -> dict[str, Any]:
    """Scenario 5: a ~1 MB Claude Code-like body on the pass-through path."""
    res = result("large-body")
    b.ensure_gateway()
    p = b.plan
    pairs = _collect_pairs(b, "chat1m", ["gateway", "direct"], p.large_rounds, p.large_requests, 2)
    _pairs_result(res, pairs, "large-body", "1 MB pass-through added latency", 2.0,
                  f"{p.large_rounds} rounds x {p.large_requests} alternating requests per side")
    return res


# -- 3. streaming ---------------------------------------------------------------------------------


def streaming(b: Bench) -> dict[str, Any]:
    """Scenario 3: paced 64-delta streams, time to first byte and per-frame transit."""
    res = result("streaming")
    b.ensure_gateway()
    p = b.plan
    acc: dict[str, dict[str, list[int]]] = {s: {"ttfb_us": [], "transit_us": [], "gap_us": [], "frames": []}
                                            for s in ("gateway", "direct")}
    errors = 0
    for r in range(p.stream_rounds):
        spec = {"mode": "streams", "streams": p.stream_per_round, "warmup": 2 if r == 0 else 0, "max_seconds": 240,
                "targets": [b.target("gateway", profile="paced", stream=True, stamps=True),
                            b.target("direct", profile="paced", stream=True, stamps=True)]}
        out = b.load(spec, timeout=300)
        for side in acc:
            for key in acc[side]:
                acc[side][key] += out[side][key]
            errors += out[side]["errors"]
    ttfb_g, ttfb_d = _ms(acc["gateway"]["ttfb_us"]), _ms(acc["direct"]["ttfb_us"])
    tr_g, tr_d = _ms(acc["gateway"]["transit_us"]), _ms(acc["direct"]["transit_us"])
    gap_g, gap_d = _ms(acc["gateway"]["gap_us"]), _ms(acc["direct"]["gap_us"])
    n = len(acc["gateway"]["ttfb_us"])
    note = f"{n} streams per side, {p.deltas} deltas {p.interval_ms:g} ms apart, c=1"
    res["rows"] += [
        {"metric": "time to first byte (ms)", "unit": "ms", "gateway": ttfb_g, "direct": ttfb_d,
         "added": _added(ttfb_g, ttfb_d), "note": note + "; each stream starts on an idle machine"},
        {"metric": "per-delta transit, upstream send → client (ms)", "unit": "ms", "gateway": tr_g,
         "direct": tr_d, "added": _added(tr_g, tr_d), "note": "the added inter-chunk delay"},
        {"metric": "inter-chunk gap at the client (ms)", "unit": "ms", "gateway": gap_g, "direct": gap_d,
         "note": f"upstream sends every {p.interval_ms:g} ms; jitter only (frames read together give ~0)"},
    ]
    frames = {side: stats.median(acc[side]["frames"]) for side in acc}
    res["details"] = {"frames_per_stream_median": frames, "errors": errors}
    added_ttfb = ttfb_g["p50"] - ttfb_d["p50"]
    res["targets"].append(target("ttfb", "added time to first byte", "≤ 1 ms (p50)", added_ttfb, "ms",
                                 added_ttfb <= 1.0))
    check_errors(res, errors, 2 * n + errors, "streams failed")
    return res


# -- 4. translation lane ----------------------------------------------------------------------------


def probe_lane(b: Bench) -> str:
    """Empty string when an Anthropic stream translates correctly, else the reason."""
    raw = request_for(b.target("gateway", "anthropic"), close=True)
    try:
        status, body = request_once(b.gateway.port, raw, timeout=10)
    except OSError as exc:
        return f"request failed: {exc!r}"
    if status != 200:
        return f"HTTP {status}: {body[:200]!r}"
    missing = [e for e in (b"message_start", b"content_block_delta", b"message_stop") if e not in body]
    if missing:
        return f"stream lacks {b', '.join(missing).decode()}: {body[:200]!r}"
    deltas = body.count(b"content_block_delta")
    if deltas < b.plan.deltas:
        return f"only {deltas} of {b.plan.deltas} text deltas arrived"
    return ""


def translation(b: Bench) -> dict[str, Any]:
    """Scenario 4: Anthropic Messages in → OpenAI chat upstream, streamed; events per CPU-second."""
    res = result("translation")
    b.ensure_gateway()
    p = b.plan
    problem = probe_lane(b)
    b.lane_ok = not problem
    if problem:
        res["status"] = "failed"
        res["reason"] = f"translation lane: {problem}"
        return res
    lanes = {
        "translation": b.target("gateway", "anthropic"),
        "translation-long": b.target("gateway", "anthropic", profile="long"),
        "passthrough": b.target("gateway", "chat1k", stream=True),
        "direct": b.target("direct", "chat1k", stream=True),
    }
    per_core: dict[str, list[float]] = {k: [] for k in lanes}
    wall: dict[str, list[float]] = {k: [] for k in lanes}
    util: dict[str, list[float]] = {k: [] for k in lanes}
    cpu_per_stream: dict[str, list[float]] = {k: [] for k in lanes}
    events_per_stream: dict[str, list[float]] = {k: [] for k in lanes}
    errors = 0
    total = 0
    first_error = ""
    order = list(lanes)
    for r in range(p.tr_rounds):
        for lane in order[r % len(order):] + order[:r % len(order)]:
            pid = b.gateway.pid if lane != "direct" else None
            before = cpu_seconds(pid) if pid else 0.0
            spec = {"mode": "throughput", "mix": [lanes[lane]], "concurrency": p.tr_concurrency,
                    "seconds": p.tr_seconds, "warmup": 0.0}
            started = time.monotonic()
            out = b.load(spec, timeout=p.tr_seconds + 90)
            elapsed = time.monotonic() - started
            errors += out["errors"]
            total += out["done"] + out["errors"]
            first_error = first_error or out["first_error"]
            wall[lane].append(out["frames"] / out["elapsed_s"] if out["elapsed_s"] else math.nan)
            if out["done"]:
                events_per_stream[lane].append(out["frames"] / out["done"])
            if pid:
                used = cpu_seconds(pid) - before
                per_core[lane].append(out["frames"] / used if used > 0 else math.nan)
                util[lane].append(used / elapsed)
                if out["done"]:
                    cpu_per_stream[lane].append(used / out["done"] * 1e6)
    row_t = stats.summary(per_core["translation"])
    row_p = stats.summary(per_core["passthrough"])
    # Two stream lengths give the marginal CPU per event and the fixed CPU per stream.
    c_short, c_long = stats.median(cpu_per_stream["translation"]), stats.median(cpu_per_stream["translation-long"])
    e_short = stats.median(events_per_stream["translation"])
    e_long = stats.median(events_per_stream["translation-long"])
    per_event = (c_long - c_short) / (e_long - e_short) if e_long > e_short else math.nan
    fixed = c_short - per_event * e_short
    res["rows"] += [
        {"metric": "translated events/s per core (Anthropic in, OpenAI upstream)", "unit": "ev/s",
         "gateway": row_t, "note": f"client-side SSE events / gateway CPU-s; c={p.tr_concurrency}, "
                                   f"{p.deltas}-delta burst streams; min/median/max of {p.tr_rounds} rounds"},
        {"metric": "same, 512-delta streams", "unit": "ev/s", "gateway": stats.summary(per_core["translation-long"]),
         "note": f"marginal {per_event:.1f} µs CPU per event + {fixed:.0f} µs per stream "
                 f"(→ {1e6 / per_event if per_event > 0 else math.nan:,.0f} ev/s per core at infinite length)"},
        {"metric": "pass-through stream frames/s per core (OpenAI in and out)", "unit": "ev/s", "gateway": row_p,
         "note": "same upstream stream, no translation"},
        {"metric": "events/s wall clock", "unit": "ev/s", "gateway": stats.summary(wall["translation"]),
         "direct": stats.summary(wall["direct"]), "note": "gateway column: translation lane"},
        {"metric": "gateway CPU utilisation during translation", "unit": "cores",
         "gateway": stats.summary(util["translation"])},
    ]
    res["details"] = {"per_core": per_core, "wall": wall, "utilisation": util, "errors": errors,
                      "first_error": first_error, "cpu_us_per_stream": cpu_per_stream,
                      "events_per_stream": events_per_stream, "marginal_us_per_event": per_event,
                      "fixed_us_per_stream": fixed}
    res["targets"].append(target("translation", "translated events/s per core", "≥ 100,000", row_t["p50"],
                                 "ev/s", row_t["p50"] >= 100_000))
    check_errors(res, errors, total, f"stream requests failed ({first_error})")
    return res


# -- 2. throughput at c=64 ----------------------------------------------------------------------------


def throughput(b: Bench) -> dict[str, Any]:
    """Scenario 2: closed-loop c=64, non-stream 1 KB; gateway vs LiteLLM vs direct."""
    res = result("throughput")
    b.ensure_gateway()
    p = b.plan
    sides = ["gateway", "direct"]
    litellm_start = math.nan
    if b.litellm is not None:
        try:
            litellm_start = b.litellm.start()
            sides.insert(1, "litellm")
        except RuntimeError as exc:
            b.litellm_problem = f"LiteLLM did not start: {exc}"
            b.litellm.stop()
    rps: dict[str, list[float]] = {s: [] for s in sides}
    lat: dict[str, list[int]] = {s: [] for s in sides}
    util: list[float] = []
    errors: dict[str, int] = dict.fromkeys(sides, 0)
    first_error: dict[str, str] = dict.fromkeys(sides, "")
    try:
        for r in range(p.tp_rounds):
            for side in sides[r % len(sides):] + sides[:r % len(sides)]:
                spec = {"mode": "throughput", "mix": [b.target(side)], "concurrency": p.tp_concurrency,
                        "seconds": p.tp_seconds, "warmup": p.tp_warmup}
                before = cpu_seconds(b.gateway.pid) if side == "gateway" else 0.0
                out = b.load(spec, timeout=p.tp_seconds + p.tp_warmup + 120)
                if side == "gateway":
                    util.append((cpu_seconds(b.gateway.pid) - before) / max(out["elapsed_s"], 1e-9))
                rps[side].append(out["rps"])
                lat[side] += out["latency_us"]
                errors[side] += out["errors"]
                first_error[side] = first_error[side] or out["first_error"]
    finally:
        if b.litellm is not None:
            b.litellm.stop()
    summaries = {s: stats.summary(rps[s]) for s in sides}
    for summary in summaries.values():
        summary["p99"] = summary["max"]  # for rounds of throughput the third figure is the best round
    lats = {s: _ms(lat[s]) for s in sides}
    gw, direct = stats.median(rps["gateway"]), stats.median(rps["direct"])
    row: dict[str, Any] = {"metric": "requests/s at c=64 (min / median / max of rounds)", "unit": "req/s",
                           "gateway": summaries["gateway"], "direct": summaries["direct"],
                           "ratio": gw / direct if direct else math.nan,
                           "note": f"{p.tp_rounds} rounds x {p.tp_seconds:g} s, 1 KB non-stream"}
    lrow: dict[str, Any] = {"metric": "latency at c=64 (ms)", "unit": "ms", "gateway": lats["gateway"],
                            "direct": lats["direct"], "added": _added(lats["gateway"], lats["direct"])}
    if "litellm" in sides:
        row["litellm"] = summaries["litellm"]
        lrow["litellm"] = lats["litellm"]
    res["rows"] += [row, lrow,
                    {"metric": "gateway CPU utilisation", "unit": "cores", "gateway": stats.summary(util)}]
    lit = stats.median(rps["litellm"]) if "litellm" in sides else math.nan
    vs_lit = gw / lit if lit else math.nan
    res["details"] = {"rps": rps, "errors": errors, "first_error": first_error, "litellm_start_s": litellm_start,
                      "litellm_problem": b.litellm_problem, "ratio_vs_litellm": vs_lit,
                      "ratio_vs_direct": gw / direct if direct else math.nan}
    lit_note = "" if "litellm" in sides else (b.litellm_problem or "LiteLLM not run")
    res["targets"] += [
        target("tp-litellm", "throughput vs LiteLLM", "≥ 10x", vs_lit, "x", vs_lit >= 10, lit_note),
        target("tp-direct", "throughput vs direct", "≥ 0.5x", gw / direct if direct else math.nan, "x",
               direct > 0 and gw / direct >= 0.5),
    ]
    total = sum(len(lat[s]) for s in sides)
    if errors["gateway"] or errors["direct"]:
        check_errors(res, errors["gateway"] + errors["direct"], total,
                      f"requests failed ({first_error['gateway'] or first_error['direct']})")
    if "litellm" in sides and errors["litellm"]:
        b.notes.append(f"LiteLLM answered {errors['litellm']} requests with errors ({first_error['litellm']})")
    return res
