"""rbee on Ray: how soon a node that joins gets a hive, and what Ray costs the queen.

    python benchmarks/bench_ray.py [--jobs 20] [--joins 3]

Needs root, `ip` and rbee[ray]. In a loopback-only network namespace
(steps/support/ray_cluster.py), one run measures side by side:

- hive appearance: a node joins (`ray start --address`) -> its hive is `ready` at the queen
  (polled every 0.1 s), `--joins` times;
- the queen without Ray (its own local hive) and with `--ray` (a hive per node): its resident
  memory once ready, and the wall time of `--jobs` short jobs (8 tokens, warm worker; the
  client inside the namespace submits and reads each stream to [DONE]).

Prints a Markdown table of medians and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from steps.support.ray_cluster import RayCluster

QUEEN = "http://127.0.0.1:8500"
BIN = Path(sys.executable).parent

CLIENT = r"""
import httpx, json, sys, time
url, n = sys.argv[1], int(sys.argv[2])
body = {"model": "smollm2-135m", "prompt": "Name the capital of France.", "temperature": 0,
        "max_tokens": 8}
def one():
    started = time.perf_counter()
    job = httpx.post(url + "/jobs", json=body, timeout=300).json()
    with httpx.stream("GET", url + job["sse_url"], timeout=300) as stream:
        for line in stream.iter_lines():
            if line == "data: [DONE]":
                break
    return time.perf_counter() - started
one()  # the first starts the hive (without Ray) and the worker
print(json.dumps([one() for _ in range(n)]))
"""

HIVES = (
    "import httpx, json; print(json.dumps([h['name'] for h in "
    "httpx.get('http://127.0.0.1:8500/hives', timeout=5).json()['hives'] "
    "if h['state'] == 'ready']))"
)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ready_hives(cluster: RayCluster) -> list[str]:
    done = cluster.run([sys.executable, "-c", HIVES], capture_output=True, text=True)
    return list(json.loads(done.stdout)) if done.returncode == 0 else []


def queen(cluster: RayCluster, home: Path, *extra: str) -> subprocess.Popen[bytes]:
    log = open(home / f"queen{'-ray' if extra else ''}.log", "ab")  # noqa: SIM115
    command = [str(BIN / "queen-rbee"), "--port", "8500", *extra]
    return cluster.popen(command, stdout=log, stderr=log)


def jobs(cluster: RayCluster, n: int) -> list[float]:
    done = cluster.run(
        [sys.executable, "-c", CLIENT, QUEEN, str(n)], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return list(json.loads(done.stdout))


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--joins", type=int, default=3)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="rbee-bench-ray-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RBEE_")}
    env.update(RBEE_HOME=str(home), PYTHONUNBUFFERED="1")
    if "RBEE_MODELS_DIR" in os.environ:
        env["RBEE_MODELS_DIR"] = os.environ["RBEE_MODELS_DIR"]
    with RayCluster(home, env) as cluster:
        address = cluster.start_head(num_cpus=1, memory=4 * 2**30)

        plain = queen(cluster, home)
        without = jobs(cluster, args.jobs)
        rss_without = rss_mb(plain.pid)
        stop(plain)

        ray_queen = queen(cluster, home, "--ray", address)
        while len(ready_hives(cluster)) < 1:
            time.sleep(0.2)
        with_ray = jobs(cluster, args.jobs)
        rss_with = rss_mb(ray_queen.pid)
        appear = []
        for n in range(args.joins):
            cluster.add_node(num_cpus=1, memory=4 * 2**30)
            joined = time.monotonic()  # the node is registered: `ray start` has returned
            while len(ready_hives(cluster)) < n + 2:
                time.sleep(0.1)
            appear.append(time.monotonic() - joined)
        stop(ray_queen)

    med = statistics.median
    print("| | without Ray | with `--ray` | ratio |\n| --- | --- | --- | --- |")
    print(
        f"| job wall time, median of {args.jobs} (s) | {med(without):.3f} | {med(with_ray):.3f} "
        f"| {med(with_ray) / med(without):.2f} |"
    )
    print(f"| queen resident memory (MB) | {rss_without:.0f} | {rss_with:.0f} | "
          f"{rss_with / rss_without:.2f} |")  # fmt: skip
    print(
        f"\nA joining node's hive ready after: median {med(appear):.1f} s "
        f"(each: {', '.join(f'{t:.1f}' for t in appear)})"
    )


if __name__ == "__main__":
    main()
