"""rbee foundation benchmark: what each layer of rbee costs on top of plain transformers.

One run measures, side by side, on the same model (``smollm2-135m``, the converted fp32
safetensors copy on the CPU), the same prompt and the same greedy settings (temperature 0):

1. ``hf``: transformers ``model.generate(do_sample=False, max_new_tokens=N)`` in this
   process, the model loaded exactly as ``TorchBackend.load`` loads it.
2. ``rbee``: rbee's own decode loop in this process (``TorchBackend().load(...).generate``);
   2 vs 1 is the cost of rbee's decode loop.
3. ``queen``: the same job end to end through a real ``queen-rbee`` (POST /jobs, then its
   SSE stream read with httpx, timed from the POST to ``[DONE]``), and ``keeper``: the same
   job through a real ``rbee-keeper -q infer ... --queen-url`` subprocess against that
   queen (wall time, process start included).
   1, 2, 3 and the keeper take turns within one loop (the order rotates every run), so slow
   drift on a shared machine hits them all alike.
4. Time to first token: POST /jobs on the queen -> first token event, alternating with
   POST /generate straight to a worker this script starts itself (``python -m rbee_worker``).
5. Cold start: nothing running, model cached: ``rbee-keeper infer ... --max-tokens 1`` from
   process start to the first byte on its stdout (queen start + worker start + model load +
   first token), each run in a fresh state dir; the keeper starts and stops its own queen.

Rates: ``e2e tok/s`` = completion tokens / whole job time; ``decode tok/s`` = (completion
tokens - 1) / (time from the first to the last token), i.e. prefill excluded. Every figure is
a median over ``--runs`` runs (p90 where there are at least 5), after one warm-up job per
variant; comparisons are ratios and differences of medians. Torch threads are left at
torch's default in every process (printed).

Isolation: every process runs with ``RBEE_HOME`` and ``HOME`` set to a temporary folder
(removed at the end), never port 8500. The model cache is shared: ``RBEE_MODELS_DIR`` if set,
else ``$TMPDIR/rbee-bench-models`` (``--models-dir`` overrides both); the first run converts
the GGUF there once (about half a minute). All processes started here are stopped at the end.

Run it from the project's virtualenv::

    python benchmarks/bench_foundation.py [--runs 5] [--max-tokens 128] [--json out.json]
                                          [--models-dir DIR] [--skip-cold]

The markdown tables go to stdout, progress to stderr. A default run takes about 2.5 minutes
on 2 idle CPU cores (plus the one-off conversion); the notes list the load average at start
and end, since anything else running on the machine skews every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import connect_sse

MODEL = "smollm2-135m"
# A chat prompt the model answers at length: with greedy decoding it writes well past 128
# tokens without reaching EOS (checked: every variant reports its completion tokens).
PROMPT = "Write a long story about a bee who builds a hive in an old oak tree."
FORBIDDEN_PORT = 8500
STREAM_TIMEOUT = 600.0  # seconds: no single job may take longer
START_TIMEOUT = 300.0  # seconds: for a queen or worker to come up

now = time.perf_counter


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- statistics -----------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p90(values: list[float]) -> float | None:
    if len(values) < 5:
        return None
    return statistics.quantiles(values, n=10, method="inclusive")[8]


class Results:
    """Named series of measurements, the comparisons between them, and raw run records."""

    def __init__(self) -> None:
        self.series: dict[str, dict[str, Any]] = {}
        self.comparisons: list[dict[str, Any]] = []
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.notes: list[str] = []

    def add(self, key: str, label: str, unit: str, value: float) -> None:
        entry = self.series.setdefault(key, {"label": label, "unit": unit, "values": []})
        entry["values"].append(value)

    def record(self, variant: str, run: dict[str, Any]) -> None:
        self.records.setdefault(variant, []).append(run)

    def med(self, key: str) -> float:
        return median(self.series[key]["values"]) if key in self.series else float("nan")

    def compare(self, label: str, a: str, b: str) -> None:
        """``a`` relative to ``b``: ratio and difference of their medians."""
        ma, mb = self.med(a), self.med(b)
        self.comparisons.append(
            {
                "label": label,
                "a": a,
                "b": b,
                "unit": self.series.get(a, {}).get("unit", ""),
                "ratio": ma / mb if mb else float("nan"),
                "difference": ma - mb,
            }
        )

    def to_json(self) -> dict[str, Any]:
        series = {
            key: {**entry, "median": median(entry["values"]), "p90": p90(entry["values"])}
            for key, entry in self.series.items()
        }
        return {
            "series": series,
            "comparisons": self.comparisons,
            "runs": self.records,
            "notes": self.notes,
        }


def stream_rates(
    started: float, first: float | None, last: float | None, done: float, tokens: int
) -> dict[str, Any]:
    """The timings of one job: whole-job and decode rates, time to first token."""
    total = done - started
    decode = (tokens - 1) / (last - first) if first and last and last > first else float("nan")
    return {
        "total_s": total,
        "ttft_s": (first - started) if first else float("nan"),
        "e2e_tps": tokens / total if total > 0 else float("nan"),
        "decode_tps": decode,
        "completion_tokens": tokens,
    }


# -- processes ------------------------------------------------------------------------------


def free_port() -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port != FORBIDDEN_PORT:
            return port


def program(name: str) -> str:
    """The console script installed next to this Python (as a user runs it)."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else (shutil.which(name) or name)


def isolated_env(home: Path, models: Path) -> dict[str, str]:
    """This environment without any RBEE_/XDG_ setting, isolated under ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RBEE_", "XDG_"))}
    (home / "home").mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home / "home"),
        RBEE_HOME=str(home),
        RBEE_MODELS_DIR=str(models),
        PYTHONUNBUFFERED="1",
    )
    return env


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def stop_process(process: subprocess.Popen[bytes], url: str | None = None) -> None:
    """Ask politely (POST /shutdown), then SIGTERM, then SIGKILL."""
    if process.poll() is None and url is not None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(f"{url}/shutdown", json={}, timeout=5.0)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(20)
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def processes_of(home: Path) -> list[int]:
    """Live processes started with ``RBEE_HOME=home`` (only this script's children have it)."""
    marker = f"RBEE_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            if (entry / "stat").read_text().split()[2] == "Z":
                continue
        except OSError:
            continue
        found.append(int(entry.name))
    return found


def kill_leftovers(home: Path) -> int:
    pids = processes_of(home)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


def start_queen(env: dict[str, str], home: Path, port: int) -> subprocess.Popen[bytes]:
    url = f"http://127.0.0.1:{port}"
    with open(home / "queen.log", "ab") as log:
        process = subprocess.Popen(
            [program("queen-rbee"), "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    deadline = now() + START_TIMEOUT
    while not healthy(url):
        if process.poll() is not None:
            raise RuntimeError(f"queen-rbee exited with {process.returncode}; see {home}")
        if now() > deadline:
            stop_process(process)
            raise RuntimeError(f"queen-rbee was not healthy within {START_TIMEOUT:.0f} s")
        time.sleep(0.05)
    return process


class Worker:
    """An ``llm-worker-rbee`` this script starts, its stdout lines read by a thread."""

    def __init__(self, env: dict[str, str], home: Path) -> None:
        with open(home / "worker.log", "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rbee_worker", "--model", MODEL],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.url: str | None = None

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:  # read to the end, so the pipe never fills
            with contextlib.suppress(ValueError):
                self.lines.put(json.loads(line))
        self.lines.put(None)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> str:
        deadline = now() + timeout
        while self.url is None:
            try:
                message = self.lines.get(timeout=max(0.1, deadline - now()))
            except queue.Empty:
                raise RuntimeError("the worker did not become ready in time") from None
            if message is None or message.get("type") == "error":
                raise RuntimeError(f"the worker failed to start: {message}")
            if message.get("type") == "ready":
                self.url = str(message["url"])
        return self.url

    def stop(self) -> None:
        stop_process(self.process, self.url)


def run_keeper(
    args: list[str], env: dict[str, str], stderr_path: Path, timeout: float = STREAM_TIMEOUT
) -> dict[str, Any]:
    """Run ``rbee-keeper ARGS``; time to its first stdout byte and to its exit."""
    started = now()
    with open(stderr_path, "ab") as err:
        process = subprocess.Popen(
            [program("rbee-keeper"), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    killer = threading.Timer(timeout, process.kill)
    killer.start()
    try:
        assert process.stdout is not None
        fd = process.stdout.fileno()
        first: float | None = None
        chunks: list[bytes] = []
        while data := os.read(fd, 65536):
            if first is None:
                first = now()
            chunks.append(data)
        code = process.wait()
    finally:
        killer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    done = now()
    if code != 0:
        raise RuntimeError(f"rbee-keeper exited with {code}; see {stderr_path}")
    return {
        "first_byte_s": (first - started) if first else float("nan"),
        "wall_s": done - started,
        "text": b"".join(chunks).decode(errors="replace"),
    }


def read_sse(
    client: httpx.Client, method: str, url: str, started: float, **kwargs: Any
) -> dict[str, Any]:
    """Read one job's SSE stream to ``[DONE]``, stamping its token events."""
    first: float | None = None
    last: float | None = None
    end: dict[str, Any] = {}
    text: list[str] = []
    with connect_sse(client, method, url, **kwargs) as source:
        source.response.raise_for_status()
        for sse in source.iter_sse():
            stamp = now()
            if sse.data == "[DONE]":
                break
            data = json.loads(sse.data)
            if sse.event == "token":
                first = first or stamp
                last = stamp
                text.append(data["text"])
            elif sse.event == "end":
                end = data
            elif sse.event == "error":
                raise RuntimeError(f"the job failed: {data}")
    done = now()
    run = stream_rates(started, first, last, done, int(end.get("completion_tokens", 0)))
    run.update(
        finish_reason=end.get("finish_reason"),
        prompt_tokens=end.get("prompt_tokens"),
        text="".join(text),
    )
    return run


def queen_job(client: httpx.Client, job: dict[str, Any]) -> dict[str, Any]:
    started = now()
    response = client.post("/jobs", json=job)
    response.raise_for_status()
    return read_sse(client, "GET", response.json()["sse_url"], started)


def worker_job(client: httpx.Client, worker_url: str, job: dict[str, Any]) -> dict[str, Any]:
    return read_sse(client, "POST", f"{worker_url}/generate", now(), json=job)


def rotate(i: int, steps: list[Callable[[], None]]) -> None:
    """Run every step once, starting one further along each run (spreads any drift evenly)."""
    k = i % len(steps)
    for step in steps[k:] + steps[:k]:
        step()


# -- phases ---------------------------------------------------------------------------------

Generate = Callable[[int], dict[str, Any]]
"""Runs one greedy job of N tokens and returns its timings (see ``stream_rates``)."""


def load_in_process(res: Results) -> tuple[Generate, Generate]:
    """Variants 1 and 2, loaded in this process (warmed up later, just before measuring)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.generation.streamers import BaseStreamer

    from rbee_core.backends import GenerationParams
    from rbee_core.plugins import create_plugin_manager, model_catalog
    from rbee_torch.backend import TorchBackend
    from rbee_torch.convert import converted_path, ensure_safetensors

    def narrate(action: str, message: str) -> None:
        say(f"{action}: {message}")

    local = model_catalog(create_plugin_manager("worker")).provision(MODEL, narrate)
    if local.format == "gguf":
        ensure_safetensors(local, narrate)  # converts once into the shared cache
        folder = converted_path(local)
    else:
        folder = local.path
    res.notes.append(f"model folder: {folder}")

    # Exactly as TorchBackend.load loads it on the CPU.
    tokenizer = AutoTokenizer.from_pretrained(folder)
    hf_model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    hf_model = hf_model.to("cpu").eval()  # type: ignore[arg-type]
    rbee_model = TorchBackend().load(local, "cpu", narrate)

    # The same prompt encoding as rbee's (chat template, generation prompt).
    input_ids = torch.tensor([rbee_model.encode(PROMPT, raw=False)])
    prompt_tokens = int(input_ids.shape[1])
    res.notes.append(f"prompt tokens (chat template): {prompt_tokens}")

    class Stamps(BaseStreamer):
        """When each new token comes out of generate (the first put is the prompt)."""

        def __init__(self) -> None:
            self.puts: list[float] = []

        def put(self, value: Any) -> None:
            self.puts.append(now())

        def end(self) -> None:
            pass

    def hf_once(tokens: int) -> dict[str, Any]:
        stamps = Stamps()
        started = now()
        with torch.inference_mode():
            out = hf_model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                do_sample=False,
                max_new_tokens=tokens,
                streamer=stamps,
            )
        done = now()
        new = out[0, prompt_tokens:]
        times = stamps.puts[1:]
        run = stream_rates(started, times[0], times[-1], done, int(new.shape[0]))
        run.update(
            prompt_tokens=prompt_tokens, text=tokenizer.decode(new, skip_special_tokens=True)
        )
        return run

    def rbee_once(tokens: int) -> dict[str, Any]:
        params = GenerationParams(max_tokens=tokens, temperature=0.0)
        first: float | None = None
        last: float | None = None
        text: list[str] = []
        end: Any = None
        started = now()
        for chunk in rbee_model.generate(PROMPT, params, lambda: False):
            if chunk.text:
                first = first or now()
                last = now()
                text.append(chunk.text)
            if chunk.finish_reason is not None:
                end = chunk
        done = now()
        run = stream_rates(started, first, last, done, int(end.completion_tokens))
        run.update(
            prompt_tokens=end.prompt_tokens, finish_reason=end.finish_reason, text="".join(text)
        )
        return run

    return hf_once, rbee_once


def add_stream(res: Results, variant: str, label: str, run: dict[str, Any]) -> None:
    """Record one streamed job's figures under ``variant``."""
    res.record(variant, run)
    res.add(f"{variant}.e2e_tps", f"{label}: whole-job rate", "tok/s", run["e2e_tps"])
    res.add(f"{variant}.decode_tps", f"{label}: decode rate", "tok/s", run["decode_tps"])
    res.add(f"{variant}.ttft", f"{label}: time to first token", "ms", run["ttft_s"] * 1e3)
    res.add(f"{variant}.total", f"{label}: job time", "s", run["total_s"])
    tokens = run["completion_tokens"]
    res.add(f"{variant}.tokens", f"{label}: completion tokens", "tokens", tokens)


def phase_warm(
    res: Results,
    runs: int,
    max_tokens: int,
    root: Path,
    models: Path,
    in_process: tuple[Generate, Generate],
) -> None:
    """1, 2 and 3 in one loop (in-process, queen over HTTP, keeper), then 4 (TTFT)."""
    hf_once, rbee_once = in_process
    home = root / "queen"
    env = isolated_env(home, models)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    job = {"model": MODEL, "prompt": PROMPT, "max_tokens": max_tokens, "temperature": 0.0}
    keeper_args = [
        "-q", "infer", PROMPT, "--model", MODEL, "--max-tokens", str(max_tokens),
        "--temperature", "0", "--queen-url", url,
    ]  # fmt: skip
    queen: subprocess.Popen[bytes] | None = None
    worker: Worker | None = None
    timeout = httpx.Timeout(30.0, read=STREAM_TIMEOUT)
    try:
        say(f"starting queen-rbee on port {port}, and a worker of our own")
        started = now()
        queen = start_queen(env, home, port)
        res.notes.append(f"queen-rbee healthy {now() - started:.2f} s after its start")
        worker = Worker(env, home)
        with httpx.Client(base_url=url, timeout=timeout) as client:
            started = now()
            queen_job(client, {**job, "max_tokens": 1})
            res.notes.append(
                f"first queen job (starts the queen's worker, 1 token): {now() - started:.2f} s"
            )
            one_token = [*keeper_args[:3], "--max-tokens", "1", "--temperature", "0"]
            run_keeper([*one_token, "--queen-url", url], env, home / "keeper.log")
            worker_url = worker.wait_ready()
            worker_job(client, worker_url, {**job, "max_tokens": 1})
            # The in-process variants warm up last, right before the loop: weights left idle
            # while the other processes start ran measurably slower on their first job.
            hf_once(16)
            rbee_once(16)
            say(f"warm: in-process models, queen, keeper, and our own worker at {worker_url}")

            texts: dict[str, str] = {}

            def local_job(variant: str, label: str, fn: Generate, i: int) -> None:
                run = fn(max_tokens)
                texts[variant] = run.pop("text")
                add_stream(res, variant, label, run)
                say(
                    f"  run {i + 1}/{runs} {variant}: {run['completion_tokens']} tokens, "
                    f"{run['e2e_tps']:.1f} tok/s whole job, {run['decode_tps']:.1f} decode"
                )

            def via_queen(i: int) -> None:
                run = queen_job(client, job)
                texts["queen"] = run.pop("text")
                add_stream(res, "queen", "3 queen, POST /jobs + SSE stream (warm)", run)
                say(
                    f"  run {i + 1}/{runs} queen: {run['completion_tokens']} tokens, "
                    f"{run['e2e_tps']:.1f} tok/s whole job, {run['decode_tps']:.1f} decode"
                )

            def via_keeper(i: int) -> None:
                run = run_keeper(keeper_args, env, home / "keeper.log")
                texts["keeper"] = run.pop("text").removesuffix("\n")
                res.record("keeper", run)
                label = "3 rbee-keeper -q infer (process), warm queen"
                res.add("keeper.wall", f"{label}: wall time", "s", run["wall_s"])
                res.add(
                    "keeper.first_byte",
                    f"{label}: process start to first stdout byte",
                    "ms",
                    run["first_byte_s"] * 1e3,
                )
                say(f"  run {i + 1}/{runs} keeper: {run['wall_s']:.2f} s wall")

            def via_hf(i: int) -> None:
                local_job("hf", "1 transformers generate (in-process)", hf_once, i)

            def via_rbee(i: int) -> None:
                local_job("rbee", "2 rbee TorchModel.generate (in-process)", rbee_once, i)

            for i in range(runs):
                rotate(i, [partial(step, i) for step in (via_hf, via_rbee, via_queen, via_keeper)])
            # The keeper runs -q (no token count); greedy gives it the queen's output.
            tokens = res.records["queen"][-1]["completion_tokens"]
            for run in res.records["keeper"]:
                run["completion_tokens"] = tokens
                rate = tokens / run["wall_s"]
                res.add("keeper.e2e_tps", "3 rbee-keeper: whole-job rate", "tok/s", rate)
            for a, b in (("hf", "rbee"), ("queen", "rbee"), ("keeper", "queen")):
                same = "yes" if texts[a] == texts[b] else "NO"
                res.notes.append(f"{a} and {b} generate the same text: {same}")

            ttft_job = {**job, "max_tokens": 1}

            def ttft(variant: str, label: str, fn: Callable[[], dict[str, Any]]) -> None:
                run = fn()
                run.pop("text")
                res.record(f"ttft_{variant}", run)
                res.add(f"ttft.{variant}", label, "ms", run["ttft_s"] * 1e3)

            def ttft_queen() -> None:
                ttft(
                    "queen",
                    "4 TTFT via the queen (POST /jobs -> first token event)",
                    lambda: queen_job(client, ttft_job),
                )

            def ttft_worker() -> None:
                ttft(
                    "worker",
                    "4 TTFT straight to a worker (POST /generate -> first token event)",
                    lambda: worker_job(client, worker_url, ttft_job),
                )

            say(f"time to first token: queen vs worker, {runs} runs each")
            for i in range(runs):
                rotate(i, [ttft_queen, ttft_worker])
    finally:
        if worker is not None:
            worker.stop()
        if queen is not None:
            stop_process(queen, url)
        left = kill_leftovers(home)
        if left:
            res.notes.append(f"WARNING: {left} process(es) left after the queen phase, killed")


def phase_cold(res: Results, runs: int, root: Path, models: Path) -> None:
    """5: keeper start -> first token, nothing running, each run in a fresh state dir."""
    for i in range(runs):
        home = root / f"cold-{i + 1}"
        env = isolated_env(home, models)
        url = f"http://127.0.0.1:{free_port()}"
        args = ["infer", PROMPT, "--max-tokens", "1", "--temperature", "0", "--queen-url", url]
        try:
            run = run_keeper(args, env, home / "keeper.log")
        finally:
            left = kill_leftovers(home)
        run.pop("text")
        run["leftover_processes"] = left
        res.record("cold", run)
        label = "5 cold start, rbee-keeper infer --max-tokens 1"
        res.add("cold.first_byte", f"{label}: start to first token", "s", run["first_byte_s"])
        res.add("cold.wall", f"{label}: start to exit (queen stopped)", "s", run["wall_s"])
        say(
            f"  run {i + 1}/{runs} cold: first token at {run['first_byte_s']:.2f} s, "
            f"exit at {run['wall_s']:.2f} s" + (f", {left} LEFTOVER(S) KILLED" if left else "")
        )
        if left:
            res.notes.append(f"WARNING: cold run {i + 1} left {left} process(es); killed")


# -- report ---------------------------------------------------------------------------------


def fmt(value: float | None, unit: str) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    if unit == "tokens":
        return f"{value:.0f}"
    if unit == "ms":
        return f"{value:.1f}"
    return f"{value:.2f}"


def report(res: Results, meta: dict[str, Any]) -> str:
    lines = [
        f"## rbee foundation benchmark ({meta['runs']} runs per variant)",
        "",
        *(f"- {key}: {value}" for key, value in meta.items()),
        *(f"- {note}" for note in res.notes),
        "",
        "| measurement | n | median | p90 | min | max | unit |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for entry in res.series.values():
        v, unit = entry["values"], entry["unit"]
        lines.append(
            f"| {entry['label']} | {len(v)} | {fmt(median(v), unit)} | {fmt(p90(v), unit)} "
            f"| {fmt(min(v), unit)} | {fmt(max(v), unit)} | {unit} |"
        )
    lines += [
        "",
        "| comparison (A vs B) | A / B (medians) | A - B (medians) |",
        "| --- | --- | --- |",
    ]
    for c in res.comparisons:
        diff = fmt(c["difference"], c["unit"])
        lines.append(f"| {c['label']} | {c['ratio']:.3f} | {diff} {c['unit']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="measured runs per variant (5)")
    parser.add_argument("--max-tokens", type=int, default=128, help="tokens per job (128)")
    parser.add_argument("--json", type=Path, help="also write every number to this file")
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=Path(
            os.environ.get("RBEE_MODELS_DIR") or Path(tempfile.gettempdir()) / "rbee-bench-models"
        ),
        help="shared model cache (RBEE_MODELS_DIR, else $TMPDIR/rbee-bench-models)",
    )
    parser.add_argument("--skip-cold", action="store_true", help="skip phase 5 (cold start)")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.max_tokens < 2:
        parser.error("--runs must be at least 1 and --max-tokens at least 2")

    models: Path = args.models_dir.resolve()
    models.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="rbee-bench-"))
    # This process too: isolated state, never the real home (before torch/transformers load).
    env = isolated_env(root / "inproc", models)
    os.environ.clear()
    os.environ.update(env)
    began = now()
    load_start = os.getloadavg()

    import torch
    import transformers

    transformers.utils.logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]

    meta: dict[str, Any] = {
        "runs": args.runs,
        "model": f"{MODEL} (converted safetensors, fp32, cpu)",
        "prompt": repr(PROMPT) + " (chat template), greedy (temperature 0)",
        "max_tokens": args.max_tokens,
        "torch threads (default, every process)": torch.get_num_threads(),
        "cpu cores": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "python / torch / transformers": (
            f"{platform.python_version()} / {torch.__version__} / {transformers.__version__}"
        ),
    }
    res = Results()
    ok = False
    try:
        say("loading the model in this process (variants 1 and 2)")
        in_process = load_in_process(res)
        say(f"1+2+3 in one loop, then 4: {args.runs} runs each")
        phase_warm(res, args.runs, args.max_tokens, root, models, in_process)
        if not args.skip_cold:
            say(f"5: cold start, {args.runs} runs")
            phase_cold(res, args.runs, root, models)
        ok = True
    finally:
        if not ok:
            say(f"failed; logs kept in {root}")

    comparisons = [
        ("2 rbee vs 1 transformers: decode rate", "rbee.decode_tps", "hf.decode_tps"),
        ("2 rbee vs 1 transformers: whole-job rate", "rbee.e2e_tps", "hf.e2e_tps"),
        ("2 rbee vs 1 transformers: time to first token", "rbee.ttft", "hf.ttft"),
        ("3 queen vs 2 rbee in-process: decode rate", "queen.decode_tps", "rbee.decode_tps"),
        ("3 queen vs 2 rbee in-process: whole-job rate", "queen.e2e_tps", "rbee.e2e_tps"),
        ("3 queen vs 2 rbee in-process: time to first token", "queen.ttft", "rbee.ttft"),
        ("3 queen vs 1 transformers: whole-job rate", "queen.e2e_tps", "hf.e2e_tps"),
        ("3 keeper vs 3 queen over HTTP: whole-job rate", "keeper.e2e_tps", "queen.e2e_tps"),
        ("3 keeper wall time vs 3 queen POST to [DONE]", "keeper.wall", "queen.total"),
        ("4 TTFT via the queen vs straight to a worker", "ttft.queen", "ttft.worker"),
    ]
    for label, a, b in comparisons:
        res.compare(label, a, b)
    for variant in ("hf", "rbee", "queen"):
        counts = {r["completion_tokens"] for r in res.records.get(variant, [])}
        if counts != {args.max_tokens}:
            res.notes.append(f"WARNING: {variant} stopped early: completion tokens {counts}")
    meta["load average (1 min) at start / end"] = f"{load_start[0]:.2f} / {os.getloadavg()[0]:.2f}"
    meta["total benchmark time"] = f"{now() - began:.0f} s"

    print(report(res, meta))
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, **res.to_json()}, indent=2) + "\n")
        say(f"wrote {args.json}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
