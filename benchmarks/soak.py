"""Soak: N concurrent clients for M minutes against a real queen and worker, with random
cancels and reconnects. Checks that every event of every job arrives exactly once (no gap,
no duplicate, across reconnects with Last-Event-ID) and reports how the resident memory of
the queen and the worker grew. Not part of the test run (it takes minutes):

    python benchmarks/soak.py [--clients 4] [--minutes 2] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from daemons import start_queen

PROMPTS = [
    "Write a short story about bees.",
    "Name the capital of France.",
    "List three colours.",
    "Explain what a hive is.",
    "Say hello in five languages.",
]


@dataclass
class Tally:
    jobs: int = 0
    events: int = 0
    duplicates: int = 0
    gaps: int = 0
    unterminated: int = 0
    mismatched: int = 0
    cancels: int = 0
    reconnects: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _rss(pid: int) -> int:
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def _read(url: str, after: int, stop_after: int | None) -> tuple[list[tuple[int, str]], bool]:
    """(id, event) pairs read from ``after``; True if the stream reached [DONE]."""
    got: list[tuple[int, str]] = []
    headers = {"Last-Event-ID": str(after)} if after else {}
    current: dict[str, str] = {}
    with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(10, read=120)) as r:
        for line in r.iter_lines():
            if line == "data: [DONE]":
                return got, True
            if not line:
                if "id" in current:
                    got.append((int(current["id"]), current.get("event", "")))
                    if stop_after is not None and len(got) >= stop_after:
                        return got, False  # leave mid-stream
                current = {}
            elif ":" in line and not line.startswith(":"):
                key, _, value = line.partition(":")
                current[key] = value.strip()
    return got, False


def client(base: str, deadline: float, rng: random.Random, tally: Tally) -> None:
    while time.monotonic() < deadline:
        body = {
            "model": "smollm2-135m",
            "prompt": rng.choice(PROMPTS),
            "max_tokens": rng.randint(5, 60),
            "temperature": 0.7,
            "seed": rng.randint(0, 9),
        }
        job = httpx.post(f"{base}/jobs", json=body, timeout=30).json()
        url = f"{base}{job['sse_url']}"
        behaviour = rng.choice(["read", "read", "reconnect", "cancel"])
        seen: list[tuple[int, str]] = []
        done = False
        cancelled = False
        while not done:
            stop = None
            if behaviour == "reconnect" and rng.random() < 0.6:
                stop = rng.randint(1, 8)
            elif behaviour == "cancel" and not cancelled:
                stop = rng.randint(3, 12)  # cancel mid-stream, then read on to the end
            after = seen[-1][0] if seen else 0
            got, done = _read(url, after, stop)
            seen += got
            if not done:
                with tally.lock:
                    tally.reconnects += 1
            if behaviour == "cancel" and not cancelled and len(seen) >= 3:
                httpx.delete(f"{base}/jobs/{job['job_id']}", timeout=30)
                cancelled = True
                with tally.lock:
                    tally.cancels += 1
        ids = [i for i, _ in seen]
        record = httpx.get(f"{base}/jobs/{job['job_id']}", timeout=30).json()
        with tally.lock:
            tally.jobs += 1
            tally.events += len(ids)
            tally.duplicates += len(ids) - len(set(ids))
            tally.gaps += len(set(range(1, max(ids) + 1)) - set(ids)) if ids else 1
            tally.unterminated += seen[-1][1] not in ("end", "error") if seen else 1
            tally.mismatched += record["events"] != len(set(ids))
            tally.outcomes[record["state"]] = tally.outcomes.get(record["state"], 0) + 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--minutes", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--models-dir", default=os.environ.get("RBEE_MODELS_DIR", "/tmp/rbee-bench-models")
    )
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="rbee-soak-") as tmp:
        env = {**os.environ, "RBEE_HOME": tmp, "HOME": tmp, "RBEE_MODELS_DIR": args.models_dir}
        queen, base = start_queen(env, "--max-queue", "64")
        try:
            warm = httpx.post(
                f"{base}/jobs", json={"model": "smollm2-135m", "prompt": "hi", "max_tokens": 2}
            ).json()
            _read(f"{base}{warm['sse_url']}", 0, None)
            workers: list[dict[str, int]] = []
            while not workers:  # the hive reports its new worker with its next heartbeat
                time.sleep(0.2)
                workers = httpx.get(f"{base}/workers").json()["workers"]
            worker_pid = workers[0]["pid"]
            rss0 = (_rss(queen.pid), _rss(worker_pid))
            tally = Tally()
            deadline = time.monotonic() + 60 * args.minutes
            threads = [
                threading.Thread(
                    target=client, args=(base, deadline, random.Random(args.seed + i), tally)
                )
                for i in range(args.clients)
            ]
            started = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.monotonic() - started
            rss1 = (_rss(queen.pid), _rss(worker_pid))
        finally:
            queen.terminate()
            queen.wait(60)
    mb = 1e6
    print(f"## soak: {args.clients} clients, {elapsed:.0f} s\n")
    print("| measurement | value |")
    print("| --- | --- |")
    for name, value in [
        ("jobs", tally.jobs),
        ("events received", tally.events),
        ("duplicate events", tally.duplicates),
        ("missing events (gaps)", tally.gaps),
        ("streams without a terminal event", tally.unterminated),
        ("jobs whose record disagrees with what was received", tally.mismatched),
        ("cancels", tally.cancels),
        ("reconnects with Last-Event-ID", tally.reconnects),
        ("outcomes", ", ".join(f"{k} {v}" for k, v in sorted(tally.outcomes.items()))),
        ("queen RSS start -> end", f"{rss0[0] / mb:.0f} -> {rss1[0] / mb:.0f} MB"),
        ("worker RSS start -> end", f"{rss0[1] / mb:.0f} -> {rss1[1] / mb:.0f} MB"),
    ]:
        print(f"| {name} | {value} |")
    ok = tally.duplicates == tally.gaps == tally.unterminated == tally.mismatched == 0
    print(f"\nevery event of every job received exactly once: {'yes' if ok else 'NO'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
