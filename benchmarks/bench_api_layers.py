"""What each drop-in API adds to time-to-first-token, against rbee's own ``POST /jobs``.

One queen, one warm worker of the default model; the same greedy 2-token chat job ("Name the
capital of France.") through each layer in turn, the order rotating every round so none is
always first after another: ``POST /jobs`` + its SSE stream, OpenAI's
``/v1/chat/completions``, ``/v1/responses``, Anthropic's ``/v1/messages`` (all streamed SSE)
and Ollama's ``/api/chat`` (streamed NDJSON). TTFT: the request sent to the first piece of
answer text the client can read (a token event, a content delta, an output_text delta, a
text_delta, an NDJSON line with content). Plain httpx on every layer, so what differs is the
queen's layer, not a client library. Reported: the median over ``--runs`` rounds per layer,
and what each adds over ``POST /jobs`` as the difference of the medians and the median of
the per-round differences. Goal: under 2 ms.

    python benchmarks/bench_api_layers.py [--runs 50] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from daemons import start_queen

MODEL = "smollm2-135m"
PROMPT = "Name the capital of France."
MESSAGES = [{"role": "user", "content": PROMPT}]
TOKENS = 2


def _sse(response: httpx.Response) -> Iterator[tuple[str, str]]:
    """(event, data) pairs of an SSE stream; event is "" where none is named."""
    event = ""
    for line in response.iter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            yield event, line[5:].strip()
            event = ""


def jobs(client: httpx.Client, base: str) -> float:
    started = time.perf_counter()
    body = {"model": MODEL, "prompt": PROMPT, "temperature": 0, "max_tokens": TOKENS}
    job = client.post(f"{base}/jobs", json=body).json()
    with client.stream("GET", f"{base}{job['sse_url']}") as response:
        for event, _ in _sse(response):
            if event == "token":
                return time.perf_counter() - started
    raise RuntimeError("POST /jobs: no token")


def openai_chat(client: httpx.Client, base: str) -> float:
    started = time.perf_counter()
    body = {"model": MODEL, "messages": MESSAGES, "temperature": 0, "max_tokens": TOKENS}
    with client.stream("POST", f"{base}/v1/chat/completions", json=body | {"stream": True}) as r:
        for _, data in _sse(r):
            if data != "[DONE]" and json.loads(data)["choices"][0]["delta"].get("content"):
                return time.perf_counter() - started
    raise RuntimeError("/v1/chat/completions: no content")


def responses(client: httpx.Client, base: str) -> float:
    started = time.perf_counter()
    body = {"model": MODEL, "input": PROMPT, "temperature": 0, "max_output_tokens": TOKENS}
    with client.stream("POST", f"{base}/v1/responses", json=body | {"stream": True}) as r:
        for event, _ in _sse(r):
            if event == "response.output_text.delta":
                return time.perf_counter() - started
    raise RuntimeError("/v1/responses: no output_text delta")


def anthropic(client: httpx.Client, base: str) -> float:
    started = time.perf_counter()
    body = {"model": MODEL, "messages": MESSAGES, "temperature": 0, "max_tokens": TOKENS}
    with client.stream("POST", f"{base}/v1/messages", json=body | {"stream": True}) as r:
        for event, _ in _sse(r):
            if event == "content_block_delta":
                return time.perf_counter() - started
    raise RuntimeError("/v1/messages: no content_block_delta")


def ollama(client: httpx.Client, base: str) -> float:
    started = time.perf_counter()
    body = {
        "model": MODEL,
        "messages": MESSAGES,
        "options": {"temperature": 0, "num_predict": TOKENS},
    }
    with client.stream("POST", f"{base}/api/chat", json=body) as r:
        for line in r.iter_lines():
            if line and json.loads(line).get("message", {}).get("content"):
                return time.perf_counter() - started
    raise RuntimeError("/api/chat: no content")


LAYERS: dict[str, Callable[[httpx.Client, str], float]] = {
    "POST /jobs": jobs,
    "OpenAI /v1/chat/completions": openai_chat,
    "OpenAI /v1/responses": responses,
    "Anthropic /v1/messages": anthropic,
    "Ollama /api/chat": ollama,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--json")
    p.add_argument(
        "--models-dir", default=os.environ.get("RBEE_MODELS_DIR", "/tmp/rbee-bench-models")
    )
    args = p.parse_args()
    names = list(LAYERS)
    ttft: dict[str, list[float]] = {name: [] for name in names}
    added: dict[str, list[float]] = {name: [] for name in names[1:]}
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="rbee-bench-") as home:
        env = {**os.environ, "RBEE_HOME": home, "HOME": home, "RBEE_MODELS_DIR": args.models_dir}
        queen, base = start_queen(env)
        try:
            with httpx.Client(timeout=httpx.Timeout(10, read=600)) as client:
                for layer in LAYERS.values():  # start the worker, warm every route once
                    layer(client, base)
                for run in range(args.runs):
                    shift = run % len(names)
                    got = {}
                    for name in names[shift:] + names[:shift]:
                        got[name] = LAYERS[name](client, base)
                        ttft[name].append(got[name])
                    for name in names[1:]:
                        added[name].append(got[name] - got["POST /jobs"])
        finally:
            queen.terminate()
            queen.wait(60)
    med = {name: 1000 * statistics.median(v) for name, v in ttft.items()}
    result: dict[str, Any] = {
        "ttft_ms_median": med,
        "added_ms_difference_of_medians": {n: med[n] - med["POST /jobs"] for n in names[1:]},
        "added_ms_paired_median": {n: 1000 * statistics.median(v) for n, v in added.items()},
        "runs": args.runs,
        "load_average": [load_start, os.getloadavg()[0]],
    }
    print(f"| layer | TTFT p50 ({args.runs} rounds) | adds over POST /jobs | paired median |")
    print("| --- | --- | --- | --- |")
    for name in names:
        if name == "POST /jobs":
            print(f"| {name} | {med[name]:.1f} ms | - | - |")
            continue
        diff = result["added_ms_difference_of_medians"][name]
        paired = result["added_ms_paired_median"][name]
        print(f"| {name} | {med[name]:.1f} ms | {diff:+.2f} ms | {paired:+.2f} ms |")
    print(f"load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
