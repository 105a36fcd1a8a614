"""What the queen adds: the same jobs through the queen and straight to its worker, alternating.

- queen-added time to first token: ``POST /jobs`` on the queen to the first token event,
  against ``POST /generate`` on the worker to its first token event; a 1-token greedy job,
  ``--runs`` pairs, the order alternating; reported as the difference of the medians and
  the median of the paired differences;
- relay rate: a greedy ``--max-tokens`` job on a story prompt both ways, the decode rate
  (tokens after the first, over the time from the first to the last token event).

    python benchmarks/bench_relay.py [--runs 30] [--max-tokens 128] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from typing import Any

import httpx
from daemons import start_queen

BODY = {"model": "smollm2-135m", "prompt": "Name the capital of France.", "temperature": 0}
LONG = "Write a long story about a bee who builds a hive in an old oak tree."


def _token_times(response: httpx.Response, started: float) -> list[float]:
    times: list[float] = []
    for line in response.iter_lines():
        if line == "event: token":
            times.append(time.perf_counter() - started)
        elif line == "data: [DONE]":
            break
    return times


def via_queen(client: httpx.Client, base: str, max_tokens: int) -> list[float]:
    started = time.perf_counter()
    body = {**BODY, "max_tokens": max_tokens, "prompt": LONG if max_tokens > 1 else BODY["prompt"]}
    job = client.post(f"{base}/jobs", json=body).json()
    with client.stream("GET", f"{base}{job['sse_url']}") as response:
        return _token_times(response, started)


def direct(client: httpx.Client, worker: str, max_tokens: int) -> list[float]:
    started = time.perf_counter()
    body = {**BODY, "max_tokens": max_tokens, "prompt": LONG if max_tokens > 1 else BODY["prompt"]}
    with client.stream("POST", f"{worker}/generate", json=body) as response:
        return _token_times(response, started)


def decode_rate(times: list[float]) -> float:
    return (len(times) - 1) / (times[-1] - times[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--json")
    p.add_argument(
        "--models-dir", default=os.environ.get("RBEE_MODELS_DIR", "/tmp/rbee-bench-models")
    )
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="rbee-bench-") as home:
        env = {**os.environ, "RBEE_HOME": home, "HOME": home, "RBEE_MODELS_DIR": args.models_dir}
        queen, base = start_queen(env)
        try:
            with httpx.Client(timeout=httpx.Timeout(10, read=600)) as client:
                via_queen(client, base, 1)  # start the hive and the worker
                worker = client.get(f"{base}/workers").json()["workers"][0]["url"]
                direct(client, worker, 1)
                ttft: dict[str, list[float]] = {"queen": [], "direct": []}
                pairs: list[float] = []
                for run in range(args.runs):
                    order = ["queen", "direct"] if run % 2 == 0 else ["direct", "queen"]
                    got = {}
                    for name in order:
                        times = (
                            via_queen(client, base, 1)
                            if name == "queen"
                            else direct(client, worker, 1)
                        )
                        got[name] = times[0]
                        ttft[name].append(times[0])
                    pairs.append(got["queen"] - got["direct"])
                rates: dict[str, list[float]] = {"queen": [], "direct": []}
                for run in range(max(3, args.runs // 10)):
                    for name in ["queen", "direct"] if run % 2 == 0 else ["direct", "queen"]:
                        times = (
                            via_queen(client, base, args.max_tokens)
                            if name == "queen"
                            else direct(client, worker, args.max_tokens)
                        )
                        rates[name].append(decode_rate(times))
        finally:
            queen.terminate()
            queen.wait(60)
    med = {k: 1000 * statistics.median(v) for k, v in ttft.items()}
    rate = {k: statistics.median(v) for k, v in rates.items()}
    result: dict[str, Any] = {
        "ttft_ms_median": med,
        "queen_added_ttft_ms": med["queen"] - med["direct"],
        "queen_added_ttft_ms_paired_median": 1000 * statistics.median(pairs),
        "decode_tok_s_median": rate,
        "relay_rate_ratio": rate["queen"] / rate["direct"],
        "runs": args.runs,
        "load_average_end": os.getloadavg()[0],
    }
    print("| measurement | via the queen | straight to the worker | queen adds |")
    print("| --- | --- | --- | --- |")
    print(
        f"| time to first token, p50 ({args.runs} pairs) | {med['queen']:.1f} ms | "
        f"{med['direct']:.1f} ms | {result['queen_added_ttft_ms']:+.1f} ms "
        f"(paired median {result['queen_added_ttft_ms_paired_median']:+.1f} ms) |"
    )
    print(
        f"| decode rate, {args.max_tokens} tokens | {rate['queen']:.1f} tok/s | "
        f"{rate['direct']:.1f} tok/s | {result['relay_rate_ratio']:.3f}x |"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
