"""The queen alone under load, on the example markov backend (a word-level Markov chain: the
worker costs next to nothing, so what is measured is the queen): many short jobs at a fixed
concurrency through the real HTTP API, as clients run them (POST /jobs, then read the
job's SSE stream to [DONE]).

Reports, per window of ``--window`` jobs (by completion): jobs/s and TTFT (POST to the first
token event) p50/p99; the queen's resident memory over time; at the end ``GET /jobs?limit=50``
latency (p50/p90 of 200 calls) and ``GET /jobs/{id}`` of the oldest job; then the time until
a queen restarted on the records answers ``/health``, and its resident memory, against a
queen started on an empty state dir (medians of ``--restarts`` each, alternating).

    pip install --no-deps -e examples/rbee-markov     # the markov backend
    python benchmarks/bench_queen_load.py [--jobs 100000] [--concurrency 16] [--tokens 16] \\
        [--json queen-load.json]

Targets (issue 16): with 100,000 finished jobs on disk, the queen's RSS within 30 MiB of
its value after the first 1,000; healthy within 1 s of an empty queen's start;
``GET /jobs?limit=50`` p50 <= 10 ms; jobs/s over the last 1,000 within 10% of the first
1,000.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from daemons import free_port, healthy

MODEL = "markov-demo"
MiB = 1 << 20


def rss(pid: int) -> int:
    """Resident bytes of ``pid`` (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RBEE_", "XDG_"))}
    env["RBEE_HOME"] = str(home)
    return env


def launch(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "rbee_queen", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_timed(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str, float]:
    """A queen, its URL and the seconds from spawning it to its first healthy answer."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    queen = launch(env, port)
    while not healthy(url):
        if queen.poll() is not None or time.perf_counter() - started > 60:
            queen.kill()
            raise RuntimeError(f"queen-rbee did not become healthy (exit {queen.returncode})")
        time.sleep(0.01)
    return queen, url, time.perf_counter() - started


def stop(queen: subprocess.Popen[bytes], url: str) -> None:
    try:
        httpx.post(f"{url}/shutdown", json={}, timeout=10)
        queen.wait(60)
    except (httpx.HTTPError, subprocess.TimeoutExpired):
        queen.kill()
        queen.wait()


class Sampler(threading.Thread):
    """The queen's RSS every ``every`` seconds, with how many jobs had completed."""

    def __init__(self, pid: int, done: list[float], every: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.done, self.every = pid, done, every
        self.samples: list[tuple[float, int, int]] = []  # (seconds, jobs done, rss)
        self.halt = threading.Event()
        self.began = time.perf_counter()

    def run(self) -> None:
        while not self.halt.wait(self.every):
            self.samples.append((time.perf_counter() - self.began, len(self.done), rss(self.pid)))


async def one_job(client: httpx.AsyncClient, tokens: int, i: int) -> float:
    """Run one job to [DONE]; its TTFT in seconds."""
    body = {"model": MODEL, "prompt": f"the queen {i % 97}", "max_tokens": tokens, "seed": i}
    started = time.perf_counter()
    answer = await client.post("/jobs", json=body)
    answer.raise_for_status()
    ttft = None
    async with client.stream("GET", answer.json()["sse_url"]) as stream:
        async for line in stream.aiter_lines():
            if ttft is None and line == "event: token":
                ttft = time.perf_counter() - started
            elif line == "data: [DONE]":
                break
    if ttft is None:
        raise RuntimeError(f"job {i} ended without a token")
    return ttft


async def load(
    url: str, jobs: int, concurrency: int, tokens: int, done: list[float]
) -> list[float]:
    """``jobs`` jobs, ``concurrency`` at a time; TTFTs in completion order (``done`` gets
    each completion's time as it happens)."""
    ttfts: list[float] = []
    counter = iter(range(jobs))
    limits = httpx.Limits(
        max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2
    )
    timeout = httpx.Timeout(60, read=None)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:

        async def runner() -> None:
            for i in counter:
                ttfts.append(await one_job(client, tokens, i))
                done.append(time.perf_counter())

        await asyncio.gather(*(runner() for _ in range(concurrency)))
    return ttfts


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed_gets(url: str, path: str, n: int) -> list[float]:
    times = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(n):
            started = time.perf_counter()
            client.get(path).raise_for_status()
            times.append(time.perf_counter() - started)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", type=int, default=100_000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--tokens", type=int, default=16)
    p.add_argument("--window", type=int, default=1000, help="jobs per reported window")
    p.add_argument("--restarts", type=int, default=3, help="start-ups timed, each kind")
    p.add_argument("--json", type=Path, help="write every figure here")
    args = p.parse_args()

    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="rbee-queen-load-"))
    home, empty = root / "records", root / "empty"
    env = env_for(home)
    queen, url, _ = start_timed(env)
    figures: dict[str, Any] = {"args": vars(args) | {"json": str(args.json)}}
    try:
        asyncio.run(load(url, args.concurrency, 1, args.tokens, []))  # the worker starts
        idle_rss = rss(queen.pid)
        done: list[float] = []
        sampler = Sampler(queen.pid, done)
        sampler.start()
        began = time.perf_counter()
        ttfts = asyncio.run(load(url, args.jobs, args.concurrency, args.tokens, done))
        elapsed = time.perf_counter() - began
        sampler.halt.set()
        sampler.join()
        final_rss = rss(queen.pid)

        windows = []
        previous = began
        for start in range(0, len(done) - args.window + 1, args.window):
            end = done[start + args.window - 1]
            chunk = ttfts[start : start + args.window]
            rss_then = next(
                (r for _, n, r in sampler.samples if n >= start + args.window), final_rss
            )
            windows.append(
                {
                    "jobs": start + args.window,
                    "jobs_per_s": args.window / (end - previous),
                    "ttft_p50_ms": 1000 * pct(chunk, 0.5),
                    "ttft_p99_ms": 1000 * pct(chunk, 0.99),
                    "rss_mib": rss_then / MiB,
                }
            )
            previous = end
        records = httpx.get(f"{url}/health", timeout=10).json()["jobs"]
        page = timed_gets(url, "/jobs?limit=50", 200)
        floor = timed_gets(url, "/health", 200)  # the HTTP round trip alone, for scale
        cursor_page = timed_gets(url, f"/jobs?limit=50&model={MODEL}&state=completed", 50)
        with httpx.Client(base_url=url, timeout=60) as client:  # to the oldest, page by page
            answer = client.get("/jobs?limit=1000").json()
            oldest = answer["jobs"][-1]["job_id"]
            while answer["next"]:
                answer = client.get(f"/jobs?limit=1000&before={answer['next']}").json()
                oldest = answer["jobs"][-1]["job_id"] if answer["jobs"] else oldest
        one = timed_gets(url, f"/jobs/{oldest}", 50)
        figures |= {
            "idle_rss_mib": idle_rss / MiB,
            "final_rss_mib": final_rss / MiB,
            "elapsed_s": elapsed,
            "jobs_per_s": args.jobs / elapsed,
            "records": records,
            "windows": windows,
            "rss_samples": sampler.samples,
            "list_limit50_ms": {"p50": 1000 * pct(page, 0.5), "p90": 1000 * pct(page, 0.9)},
            "list_filtered_ms": {"p50": 1000 * pct(cursor_page, 0.5)},
            "health_ms": {"p50": 1000 * pct(floor, 0.5)},
            "get_oldest_ms": {"p50": 1000 * pct(one, 0.5)},
        }
    finally:
        stop(queen, url)

    sqlite = home / "state" / "queen-jobs.sqlite"
    figures["store_mib"] = (
        sum(f.stat().st_size for f in sqlite.parent.glob("queen-jobs.sqlite*")) / MiB
    )
    startups: dict[str, list[tuple[float, float]]] = {"records": [], "empty": []}
    for _ in range(args.restarts):
        for kind, kind_home in (("records", home), ("empty", empty)):
            if kind == "empty":
                for f in kind_home.glob("state/queen-jobs.sqlite*"):
                    f.unlink()
            q, u, seconds = start_timed(env_for(kind_home))
            time.sleep(1.0)  # what it holds once settled, not mid-import
            startups[kind].append((seconds, rss(q.pid) / MiB))
            stop(q, u)
    figures["startup"] = {
        kind: {
            "healthy_s": statistics.median(s for s, _ in runs),
            "rss_mib": statistics.median(r for _, r in runs),
            "runs": runs,
        }
        for kind, runs in startups.items()
    }

    w = figures["windows"]
    print(f"\n{args.jobs} jobs of {args.tokens} tokens at {args.concurrency} concurrent on {MODEL}")
    print(
        f"overall: {figures['jobs_per_s']:.0f} jobs/s in {figures['elapsed_s']:.0f} s; "
        f"{figures['records']} records, store {figures['store_mib']:.1f} MiB on disk"
    )
    print("\n| jobs done | jobs/s | TTFT p50 ms | TTFT p99 ms | queen RSS MiB |")
    print("| --- | --- | --- | --- | --- |")
    step = max(1, len(w) // 10)
    for row in [*w[::step], *([w[-1]] if w and (len(w) - 1) % step else [])]:
        print(
            f"| {row['jobs']} | {row['jobs_per_s']:.0f} | {row['ttft_p50_ms']:.1f} | "
            f"{row['ttft_p99_ms']:.1f} | {row['rss_mib']:.1f} |"
        )
    s = figures["startup"]
    print(
        f"\nqueen RSS: idle (worker up) {figures['idle_rss_mib']:.1f} MiB, after the first "
        f"window {w[0]['rss_mib'] if w else 0:.1f} MiB, "
        f"at the end {figures['final_rss_mib']:.1f} MiB"
    )
    print(
        f"GET /jobs?limit=50: p50 {figures['list_limit50_ms']['p50']:.2f} ms, "
        f"p90 {figures['list_limit50_ms']['p90']:.2f} ms; filtered by state and model p50 "
        f"{figures['list_filtered_ms']['p50']:.2f} ms; GET /jobs/{{oldest}} p50 "
        f"{figures['get_oldest_ms']['p50']:.2f} ms; GET /health p50 "
        f"{figures['health_ms']['p50']:.2f} ms"
    )
    print(
        f"start-up to healthy: on the records {s['records']['healthy_s']:.2f} s "
        f"({s['records']['rss_mib']:.1f} MiB), empty {s['empty']['healthy_s']:.2f} s "
        f"({s['empty']['rss_mib']:.1f} MiB)"
    )
    if w:
        first, last = w[0], w[-1]
        checks = {
            "RSS within 30 MiB of the first window": figures["final_rss_mib"] - first["rss_mib"]
            <= 30,
            "healthy within 1 s of empty": s["records"]["healthy_s"] - s["empty"]["healthy_s"] <= 1,
            "GET /jobs?limit=50 p50 <= 10 ms": figures["list_limit50_ms"]["p50"] <= 10,
            "last window's jobs/s within 10% of the first": last["jobs_per_s"]
            >= 0.9 * first["jobs_per_s"],
        }
        figures["targets"] = checks
        for name, met in checks.items():
            print(f"  {'met' if met else 'NOT met'}: {name}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    subprocess.run(["rm", "-rf", str(root)], check=False)


if __name__ == "__main__":
    main()
