"""The GPU checks, for a machine with a GPU (run by benchmarks/gpu_check.sh, which first
builds llama.cpp with CUDA): what the hive reports each backend runs on, and the default
model's greedy jobs on the CPU and on ``cuda:0``, with llama.cpp and with torch, side by
side through one queen.

For each backend and device: decode tokens/s (tokens after the first / time after the
first) and time to first token from POST /jobs, medians over ``--rounds`` after a warm-up
job that loads the worker; whether the GPU's answer is the CPU's (greedy: it should be,
bar the last bits of floating point, which may flip a token late in a long answer); and the
worker's own narration, which says whether llama.cpp offloaded its layers.

It fails (exit 1) when a GPU job fails, when the hive does not list ``cuda:0`` for a
backend or when llama.cpp's worker did not offload: the things rbee claims. Speed is
reported, never asserted.

    python benchmarks/gpu_check.py [--rounds 5] [--tokens 128] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from bench_engines import rbee_job
from daemons import start_queen

BACKENDS = ("llamacpp", "torch")
DEVICES = ("cpu", "cuda:0")


def warm_up(url: str, backend: str, device: str) -> list[str]:
    """A 1-token job that loads the worker: the narration its stream carried."""
    body = {"model": "smollm2-135m", "prompt": "Hi", "max_tokens": 1, "backend": backend}
    body |= {"device": device, "keep_alive": 24 * 3600}
    job = httpx.post(f"{url}/jobs", json=body, timeout=30).raise_for_status().json()
    said: list[str] = []
    event = ""
    with httpx.stream("GET", f"{url}{job['sse_url']}", timeout=600) as response:
        for line in response.iter_lines():
            if line == "data: [DONE]":
                break
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "narration":
                said.append(json.loads(line[5:])["message"])
            elif line.startswith("data:") and event == "error":
                raise RuntimeError(f"job {job['job_id']} failed: {line[5:].strip()}")
    return said


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rbee-gpu-") as home:
        env = {**os.environ, "RBEE_HOME": home, "HOME": home}
        queen, url = start_queen(env)
        try:
            texts: dict[tuple[str, str], str] = {}
            said: list[str] = []
            for backend in BACKENDS:
                for device in DEVICES:
                    try:
                        said += warm_up(url, backend, device)
                        runs = [
                            rbee_job(url, args.tokens, backend, device=device)
                            for _ in range(args.rounds)
                        ]
                    except (RuntimeError, httpx.HTTPError) as exc:
                        problems.append(f"{backend} on {device}: {exc}")
                        continue
                    texts[backend, device] = runs[0]["text"]
                    rows.append(
                        {
                            "backend": backend,
                            "device": device,
                            "decode_tps": statistics.median(r["decode"] for r in runs),
                            "ttft_ms": 1000 * statistics.median(r["ttft"] for r in runs),
                        }
                    )
                if (backend, "cpu") in texts and (backend, "cuda:0") in texts:
                    same = texts[backend, "cpu"] == texts[backend, "cuda:0"]
                    rows.append({"backend": backend, "same_answer_cpu_and_gpu": same})
            hives = httpx.get(f"{url}/hives", timeout=10).json()["hives"]
            runs_on = hives[0].get("backend_devices", {}) if hives else {}
            for backend in BACKENDS:
                if "cuda:0" not in runs_on.get(backend, []):
                    problems.append(f"the hive does not list cuda:0 for {backend}: {runs_on}")
            if not any("on cuda:0 (every layer offloaded) with llama.cpp" in m for m in said):
                problems.append("no llama.cpp worker said it offloaded its layers to cuda:0")
        finally:
            queen.terminate()
            queen.wait(timeout=60)
    print("| backend | device | decode tok/s | TTFT ms |\n| --- | --- | --- | --- |")
    for row in rows:
        if "device" in row:
            print(
                f"| {row['backend']} | {row['device']} | {row['decode_tps']:.1f} "
                f"| {row['ttft_ms']:.1f} |"
            )
    for row in rows:
        if "same_answer_cpu_and_gpu" in row:
            print(
                f"- {row['backend']}: same greedy answer on cpu and cuda:0: "
                f"{'yes' if row['same_answer_cpu_and_gpu'] else 'NO'}"
            )
    print(f"- hive reports: {json.dumps(runs_on)}")
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "problems": problems}, indent=2))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
