"""Hives: how fast the queen notices a dead hive, and what placing a job costs.

1. Dead-hive detection: a real queen and a real hive (no model needed); SIGKILL the hive and
   time until ``GET /hives`` says ``unreachable``, at two heartbeat intervals. Bounded by the
   hive timeout (3 heartbeats + 1 s by default) plus the monitor's tick.
2. Scheduling overhead per job: the queen's placement decision (candidates from the
   registry, the ``rbee_schedule`` hook) with 1 and with 50 registered workers, timed in
   process over many jobs.

    python benchmarks/bench_hives.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

import httpx
from daemons import start_queen

from rbee_queen.launcher import local_command


def _wait(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.01)


def detection(heartbeat: float, runs: int, tmp: Path) -> list[float]:
    env = {**os.environ, "RBEE_HOME": str(tmp), "HOME": str(tmp)}
    queen, url = start_queen(env, "--heartbeat", str(heartbeat))
    times = []
    try:
        for i in range(runs):
            name = f"h{heartbeat}-{i}"
            hive = subprocess.Popen(
                local_command(url, name, heartbeat),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            _wait(lambda n=name: _state(url, n) == "ready", 60)
            time.sleep(heartbeat)  # a steady state: mid-way between heartbeats on average
            hive.kill()
            killed = time.perf_counter()
            hive.wait()
            _wait(lambda n=name: _state(url, n) == "unreachable", 60)
            times.append(time.perf_counter() - killed)
            print(f"heartbeat {heartbeat} s, run {i + 1}: {times[-1]:.2f} s", file=sys.stderr)
    finally:
        queen.terminate()
        queen.wait(15)
    return times


def _state(url: str, name: str) -> str | None:
    for h in httpx.get(f"{url}/hives", timeout=5).json()["hives"]:
        if h["name"] == name:
            return str(h["state"])
    return None


def scheduling(workers: int) -> float:
    """Seconds per placement decision with ``workers`` registered workers."""
    from rbee_core.job_request import JobRequest
    from rbee_core.jobs import Job
    from rbee_core.plugins import create_plugin_manager
    from rbee_queen.hives import HiveRecord
    from rbee_queen.orchestrator import Queen, WorkerRef

    queen = Queen(create_plugin_manager("queen"))
    hives = []
    for h in range(max(1, workers // 5)):
        record = HiveRecord(f"hive-{h}", f"http://10.0.0.{h}:8600", state="ready")
        record.devices = [
            {"id": "cpu", "name": "CPU", "total_memory": 2**34, "free_memory": 2**33, "cores": 16}
        ]
        queen.hives.hives[record.name] = record
        hives.append(record)
    for w in range(workers):
        model = "smollm2-135m" if w % 10 == 0 else f"model-{w}"
        queen.workers[f"w{w}"] = WorkerRef(
            f"w{w}", hives[w % len(hives)].name, model, "cpu", f"http://10.0.0.1:{9000 + w}"
        )
    job = Job(JobRequest(model="smollm2-135m", prompt="hi"))
    name = queen.model_name(job.request.model)

    def place() -> object:
        return queen.pm.hook.rbee_schedule(job=job, candidates=queen.candidates(job, name, hives))

    assert place() is not None
    n = 20000
    return min(timeit.repeat(place, number=n, repeat=5)) / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    print("## hives\n")
    print("| measurement | n | median | min | max |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="rbee-bench-") as tmp:
        for heartbeat in (0.5, 2.0):
            t = detection(heartbeat, args.runs, Path(tmp))
            print(
                f"| dead hive noticed (heartbeat {heartbeat:g} s, timeout "
                f"{3 * heartbeat + 1:g} s) | {len(t)} | {statistics.median(t):.2f} s | "
                f"{min(t):.2f} s | {max(t):.2f} s |"
            )
    for workers in (1, 50):
        per_job = scheduling(workers)
        print(
            f"| placement decision, {workers} registered workers | 5x20000 | "
            f"{per_job * 1e6:.1f} us (best of 5) | | |"
        )


if __name__ == "__main__":
    main()
