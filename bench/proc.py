"""Processes: start pinned to a core with raised file limits, measure, always kill.

Every process the bench starts is registered with a :class:`Processes`
instance, whose :meth:`Processes.close` (called from ``finally``) terminates
each one by its own process group id, then kills what is left.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def available_cores() -> list[int]:
    """The CPUs this process may run on."""
    return sorted(os.sched_getaffinity(0))


def placement_cores() -> tuple[int, int]:
    """``(gateway core, load core)``: two distinct cores when there are two."""
    cores = available_cores()
    if len(cores) >= 2:
        return cores[0], cores[1]
    return cores[0], cores[0]


def nofile_hard() -> int:
    """The hard open-file limit this process (and its children) can raise to."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def raise_own_nofile() -> int:
    """Raise this process's soft open-file limit to the hard one; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def free_port(preferred: int = 0) -> int:
    """``preferred`` when it is free on 127.0.0.1, else an ephemeral free port."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise OSError("no free port")


def port_open(port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def rss_kb(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (all its threads) in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def busy_ticks(cpus: set[int]) -> int:
    """user + nice + system clock ticks spent so far on ``cpus`` (from /proc/stat)."""
    total = 0
    with contextlib.suppress(OSError), open("/proc/stat") as fh:
        for line in fh:
            name = line.split(" ", 1)[0]
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                fields = line.split()
                total += int(fields[1]) + int(fields[2]) + int(fields[3])
    return total


def own_cpu_seconds(procs: Processes) -> float:
    """CPU seconds used by this process, its reaped children and its running children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    running = sum(cpu_seconds(p.pid) for p in procs.started if p.poll() is None)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime + running


def close_wait_count(port: int) -> int:
    """Sockets on local port ``port`` in CLOSE_WAIT (peer closed, owner has not) from /proc/net/tcp."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as fh:
            next(fh, None)
            for line in fh:
                fields = line.split()
                if len(fields) > 3 and fields[3] == "08" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


def cpu_speed(core: int, rounds: int = 3) -> float:
    """Iterations per µs of a fixed pure-Python loop run on ``core`` (best of ``rounds``).

    Taken before every load run: a slower figure means the host gave that
    CPU less (a busy hyper-thread sibling, steal), which nothing inside the
    VM accounts for.
    """
    previous = os.sched_getaffinity(0)
    best = math.inf
    try:
        os.sched_setaffinity(0, {core})
        for _ in range(rounds):
            started = time.perf_counter()
            table: dict[int, int] = {}
            for i in range(20_000):
                table[i & 255] = table.get(i & 255, 0) + i
            best = min(best, time.perf_counter() - started)
    finally:
        os.sched_setaffinity(0, previous)
    return 20_000 / (best * 1e6)


def affinity_of(pid: int) -> str:
    """``Cpus_allowed_list`` of ``pid`` as the kernel reports it."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("Cpus_allowed_list:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def nofile_of(pid: int) -> int:
    """The soft open-file limit of ``pid`` (0 if unknown)."""
    try:
        with open(f"/proc/{pid}/limits") as fh:
            for line in fh:
                if line.startswith("Max open files"):
                    return int(line.split()[3])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    out = []
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == pid:
                out.append(int(entry))
    return out


def _preexec(core: int | None, nofile: int | None) -> Callable[[], None]:
    def run() -> None:
        if core is not None:
            os.sched_setaffinity(0, {core})
        if nofile:
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            target = min(nofile, hard)
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))

    return run


class Processes:
    """Registry of started processes; :meth:`close` ends them all."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[subprocess.Popen[Any]] = []
        self._logs: list[IO[bytes]] = []

    def spawn(
        self,
        args: Sequence[str],
        name: str,
        core: int | None = None,
        nofile: int | None = None,
        env: dict[str, str] | None = None,
        use_taskset: bool = True,
        stdin: int | None = None,
        stdout: int | None = None,
    ) -> subprocess.Popen[Any]:
        """Start ``args`` on ``core`` (``taskset`` when available, else sched_setaffinity).

        stdout/stderr go to ``log_dir/name.log`` unless ``stdout`` is given.
        The process gets its own session, so it can be ended by its group id.
        """
        command = list(args)
        taskset = shutil.which("taskset") if use_taskset else None
        if core is not None and taskset:
            command = [taskset, "-c", str(core), *command]
            preexec = _preexec(None, nofile)
        else:
            preexec = _preexec(core, nofile)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in close()
        self._logs.append(log)
        proc = subprocess.Popen(
            command,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout if stdout is not None else log,
            stderr=log,
            env=env,
            preexec_fn=preexec,
            start_new_session=True,
        )
        self.started.append(proc)
        return proc

    def python_module(self, module: str, args: Sequence[str], name: str, core: int | None,
                      **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``python -m module`` with this interpreter, pinned with sched_setaffinity."""
        env = dict(os.environ)
        env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent) + os.pathsep + env.get("PYTHONPATH", "")
        return self.spawn([sys.executable, "-m", module, *args], name, core=core, env=env, use_taskset=False,
                          **kwargs)

    def stop(self, proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
        """SIGTERM the process group of ``proc``, SIGKILL after ``timeout`` seconds."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
        else:
            # The leader is gone; its group may still hold children (e.g. workers).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if proc in self.started:
            self.started.remove(proc)

    def close(self) -> None:
        """End every process still registered, newest first, and close the logs."""
        for proc in list(reversed(self.started)):
            self.stop(proc, timeout=3.0)
        for log in self._logs:
            with contextlib.suppress(OSError):
                log.close()
        self._logs.clear()


def run_load(procs: Processes, spec: dict[str, Any], core: int | None, timeout: float) -> dict[str, Any]:
    """Run one load-generator process with ``spec`` and return its JSON result."""
    proc = procs.python_module("bench.load", [], "load", core, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        out, _ = proc.communicate((json.dumps(spec) + "\n").encode(), timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"load generator ({spec['mode']}) did not finish within {timeout:.0f}s") from exc
    finally:
        procs.stop(proc)
    for line in reversed(out.decode(errors="replace").splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"load generator ({spec['mode']}) exited {proc.returncode} without a result "
                       f"(see {procs.log_dir / 'load.log'})")


def wait_until(check: Callable[[], bool], timeout: float, step: float = 0.005) -> bool:
    """Poll ``check`` every ``step`` s until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()
