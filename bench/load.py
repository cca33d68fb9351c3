"""The load generator: ``python -m bench.load`` reads one JSON spec line on stdin.

It runs in its own process (placed on the load core by the orchestrator)
and prints one JSON result line on stdout.  Modes:

``pairs``
    concurrency 1, targets alternating request by request (A B, B A, ...),
    so machine noise hits every target alike; latencies per target.  With
    ``gap_ms``, every request waits that long first (an idle, "cold" machine).
``throughput``
    ``concurrency`` workers on keep-alive connections for ``seconds``
    (after ``warmup`` seconds that are not counted), or until ``total``
    requests; the targets of ``mix`` are used in turn.  Non-stream and
    stream targets alike; stream frames are counted.
``soak``
    like ``throughput`` but in chunks of requests over persistent
    connections, pausing after each chunk until told ``next`` on stdin.
``streams``
    concurrency 1 paced streams alternating between targets: time to first
    byte and each stamped frame's transit latency.
``idle``
    opens ``count`` streams that stay silent, prints ``READY {...}``, waits
    for ``close`` on stdin (bounded), closes them all.

Latencies are in microseconds (integers) to keep the JSON small.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys
import time
from typing import Any

from bench.httpclient import Connection, Sink, StreamSink
from bench.payloads import request_for
from bench.proc import raise_own_nofile

NS_PER_US = 1000


class Target:
    """A prepared target: its request bytes and how to judge its responses."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.name: str = spec["name"]
        self.port = int(spec["port"])
        self.stream = bool(spec.get("stream"))
        self.raw = request_for(spec)
        self.stamps = bool(spec.get("stamps"))

    def sink(self, keep: int = 0, first_event: asyncio.Event | None = None) -> Sink:
        """A fresh sink for one response."""
        if self.stream:
            return StreamSink(self.stamps, first_event)
        return Sink(keep)

    def ok(self, status: int, sink: Sink, validate: bool) -> bool:
        """Whether a response counts as served."""
        if status != 200:
            return False
        if isinstance(sink, StreamSink):
            return sink.terminal
        if validate:
            return b'"choices"' in sink.body or b'"content"' in sink.body
        return sink.size > 0


async def _connect(port: int, attempts: int = 5) -> Connection:
    last: Exception | None = None
    for i in range(attempts):
        try:
            return await Connection.open(port)
        except OSError as exc:
            last = exc
            await asyncio.sleep(0.05 * (i + 1))
    raise ConnectionError(f"cannot connect to 127.0.0.1:{port}: {last}")


class Client:
    """A target with a lazily (re)opened connection."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.conn: Connection | None = None

    async def send(self, sink: Sink) -> tuple[int, int, int]:
        """One request: ``(status, start_ns, end_ns)``; reconnects when the connection closed."""
        if self.conn is None or self.conn.closed:
            self.conn = await _connect(self.target.port)
        start = time.monotonic_ns()
        status, end = await self.conn.request(self.target.raw, sink)
        return status, start, end

    def close(self) -> None:
        """Drop the connection."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


async def run_pairs(spec: dict[str, Any]) -> dict[str, Any]:
    """Alternate the targets request by request at concurrency 1."""
    clients = [Client(Target(t)) for t in spec["targets"]]
    n = int(spec["requests"])
    warmup = int(spec.get("warmup", 0))
    gap = float(spec.get("gap_ms", 0.0)) / 1000.0
    deadline = time.monotonic() + float(spec.get("max_seconds", 120))
    lat: dict[str, list[int]] = {c.target.name: [] for c in clients}
    overhead: dict[str, list[float]] = {c.target.name: [] for c in clients}
    errors = dict.fromkeys(lat, 0)
    for i in range(warmup + n):
        if time.monotonic() > deadline:
            break
        order = clients if i % 2 == 0 else clients[::-1]
        for client in order:
            name = client.target.name
            sink = client.target.sink(keep=8192)
            if gap:
                await asyncio.sleep(gap)
            try:
                status, start, end = await asyncio.wait_for(client.send(sink), timeout=30)
            except (TimeoutError, OSError):
                errors[name] += 1
                client.close()
                continue
            if not client.target.ok(status, sink, validate=i < warmup + 3):
                errors[name] += 1
                continue
            if i >= warmup:
                lat[name].append((end - start) // NS_PER_US)
                value = sink.overhead_ms()
                if value is not None:
                    overhead[name].append(value)
    for client in clients:
        client.close()
    return {"latency_us": lat, "errors": errors, "overhead_ms": overhead}


async def run_throughput(spec: dict[str, Any]) -> dict[str, Any]:
    """``concurrency`` closed-loop workers for a fixed time (or request budget)."""
    targets = [Target(t) for t in spec["mix"]]
    concurrency = int(spec["concurrency"])
    warmup = float(spec.get("warmup", 0.0))
    seconds = float(spec.get("seconds", 10.0))
    total = int(spec.get("total", 0)) or 1 << 62
    started = time.monotonic_ns()
    count_from = started + int(warmup * 1e9)
    deadline = count_from + int(seconds * 1e9)
    latencies: list[int] = []
    state = {"issued": 0, "done": 0, "errors": 0, "frames": 0, "bytes": 0, "counted": 0}
    first_error: list[str] = []

    async def worker(index: int) -> None:
        clients = [Client(t) for t in targets]
        try:
            while time.monotonic_ns() < deadline and state["issued"] < total:
                issued = state["issued"]
                state["issued"] = issued + 1
                client = clients[issued % len(clients)]
                sink = client.target.sink(keep=256)
                try:
                    status, start, end = await client.send(sink)
                except OSError as exc:
                    state["errors"] += 1
                    if not first_error:
                        first_error.append(f"{client.target.name}: {exc!r}")
                    client.close()
                    await asyncio.sleep(0.01)
                    continue
                if not client.target.ok(status, sink, validate=False):
                    state["errors"] += 1
                    if not first_error:
                        first_error.append(f"{client.target.name}: status {status} {bytes(sink.body[:200])!r}")
                    continue
                state["done"] += 1
                if isinstance(sink, StreamSink):
                    state["frames"] += sink.frames
                state["bytes"] += sink.size
                if count_from <= start and end <= deadline:
                    state["counted"] += 1
                    latencies.append((end - start) // NS_PER_US)
        finally:
            for client in clients:
                client.close()

    tasks = [asyncio.ensure_future(worker(i)) for i in range(concurrency)]
    grace = (deadline - time.monotonic_ns()) / 1e9 + 30.0
    _, pending = await asyncio.wait(tasks, timeout=max(1.0, grace))
    for task in pending:
        task.cancel()
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None and not first_error:
            first_error.append(repr(task.exception()))
    finished = time.monotonic_ns()
    window = (min(finished, deadline) - count_from) / 1e9
    return {
        "latency_us": latencies,
        "counted": state["counted"],
        "window_s": window,
        "rps": state["counted"] / window if window > 0 else 0.0,
        "done": state["done"],
        "errors": state["errors"],
        "frames": state["frames"],
        "bytes": state["bytes"],
        "elapsed_s": (finished - started) / 1e9,
        "hung": len(pending),
        "first_error": first_error[0] if first_error else "",
    }


async def run_soak(spec: dict[str, Any]) -> dict[str, Any]:
    """``chunks`` x ``chunk`` requests over connections kept across chunks.

    After each chunk it prints ``CHUNK {...}`` and waits (bounded) for a line
    on stdin, so the orchestrator can read the gateway's RSS between chunks
    without connection churn in the measurement.
    """
    targets = [Target(t) for t in spec["mix"]]
    concurrency = int(spec["concurrency"])
    chunk = int(spec["chunk"])
    chunks = int(spec["chunks"])
    chunk_seconds = float(spec.get("chunk_seconds", 300))
    pools = [[Client(t) for t in targets] for _ in range(concurrency)]
    state = {"issued": 0, "done": 0, "errors": 0}
    first_error: list[str] = []
    loop = asyncio.get_running_loop()

    async def worker(clients: list[Client], quota: int) -> None:
        while state["issued"] < quota:
            issued = state["issued"]
            state["issued"] = issued + 1
            client = clients[issued % len(clients)]
            sink = client.target.sink(keep=256)
            try:
                status, _, _ = await client.send(sink)
            except OSError as exc:
                state["errors"] += 1
                if not first_error:
                    first_error.append(f"{client.target.name}: {exc!r}")
                client.close()
                await asyncio.sleep(0.01)
                continue
            if client.target.ok(status, sink, validate=False):
                state["done"] += 1
            else:
                state["errors"] += 1
                if not first_error:
                    first_error.append(f"{client.target.name}: status {status} {bytes(sink.body[:200])!r}")

    try:
        for index in range(chunks):
            tasks = [asyncio.ensure_future(worker(pool, (index + 1) * chunk)) for pool in pools]
            _, pending = await asyncio.wait(tasks, timeout=chunk_seconds)
            for task in pending:
                task.cancel()
            report = {"index": index, "done": state["done"], "errors": state["errors"], "hung": len(pending)}
            print("CHUNK " + json.dumps(report), flush=True)
            try:
                line = await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), timeout=120)
            except TimeoutError:
                break
            if line.strip() != "next":
                break
    finally:
        for pool in pools:
            for client in pool:
                client.close()
    await asyncio.sleep(0.2)
    return {"done": state["done"], "errors": state["errors"], "first_error": first_error[0] if first_error else ""}


async def run_streams(spec: dict[str, Any]) -> dict[str, Any]:
    """Paced streams at concurrency 1, alternating targets."""
    clients = [Client(Target(t)) for t in spec["targets"]]
    n = int(spec["streams"])
    warmup = int(spec.get("warmup", 0))
    deadline = time.monotonic() + float(spec.get("max_seconds", 120))
    result: dict[str, dict[str, Any]] = {
        c.target.name: {"ttfb_us": [], "transit_us": [], "gap_us": [], "errors": 0, "frames": []} for c in clients}
    for i in range(warmup + n):
        if time.monotonic() > deadline:
            break
        order = clients if i % 2 == 0 else clients[::-1]
        for client in order:
            out = result[client.target.name]
            sink = client.target.sink()
            assert isinstance(sink, StreamSink)
            try:
                status, start, _ = await asyncio.wait_for(client.send(sink), timeout=60)
            except (TimeoutError, OSError):
                out["errors"] += 1
                client.close()
                continue
            if not client.target.ok(status, sink, validate=False):
                out["errors"] += 1
                continue
            if i < warmup:
                continue
            out["ttfb_us"].append((sink.first_ns - start) // NS_PER_US)
            out["frames"].append(sink.frames)
            out["transit_us"].extend((received - sent) // NS_PER_US for sent, received in sink.stamps)
            arrivals = [received for _, received in sink.stamps]
            out["gap_us"].extend((b - a) // NS_PER_US for a, b in itertools.pairwise(arrivals))
    for client in clients:
        client.close()
    return result


async def run_idle(spec: dict[str, Any]) -> dict[str, Any]:
    """Open ``count`` silent streams, report, hold until told to close."""
    target = Target(spec["target"])
    count = int(spec["count"])
    opening = int(spec.get("opening_concurrency", 200))
    open_timeout = float(spec.get("open_seconds", 120))
    hold_timeout = float(spec.get("hold_seconds", 300))
    conns: list[Connection] = []
    waiters: list[asyncio.Future[tuple[int, int]]] = []
    reached = 0
    failures: list[str] = []
    gate = asyncio.Semaphore(opening)
    deadline = time.monotonic() + open_timeout

    async def open_one() -> None:
        nonlocal reached
        async with gate:
            if time.monotonic() > deadline:
                return
            first = asyncio.Event()
            try:
                conn = await asyncio.wait_for(Connection.open(target.port), timeout=10)
                conns.append(conn)
                waiter = conn.request(target.raw, target.sink(first_event=first))
                waiters.append(waiter)
                waiter.add_done_callback(_swallow)
                await asyncio.wait_for(first.wait(), timeout=max(0.1, deadline - time.monotonic()))
                reached += 1
            except (TimeoutError, OSError) as exc:
                if len(failures) < 5:
                    failures.append(repr(exc))

    started = time.monotonic()
    await asyncio.gather(*(open_one() for _ in range(count)))
    open_s = time.monotonic() - started
    still_open = sum(1 for w in waiters if not w.done())
    ready = {"reached": reached, "still_open": still_open, "open_s": open_s, "failures": failures}
    print("READY " + json.dumps(ready), flush=True)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), timeout=hold_timeout)
    for conn in conns:
        conn.close()
    await asyncio.sleep(0.2)
    return ready


def _swallow(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


MODES = {"pairs": run_pairs, "throughput": run_throughput, "soak": run_soak, "streams": run_streams,
         "idle": run_idle}


def main() -> int:
    """Entry point: one JSON spec line in, one JSON result line out."""
    raise_own_nofile()
    line = sys.stdin.readline()
    spec = json.loads(line)
    result = asyncio.run(MODES[spec["mode"]](spec))
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
