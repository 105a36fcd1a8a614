"""The default model whole against split across two processes (a part on this machine's
loopback, reached through the guard and the tunnel as a part on another hive is): what the
split costs in speed, and what the part holds.

In one process, the model loaded whole and loaded split (``--part-layers`` of its 30 layers
in a part process, ``python -m rbee_llamacpp.part``), taking turns ``--rounds`` times:
decode tokens/s of 128 greedy tokens after the first, and the time to the first token of a
~500-token prompt that shares nothing with the last. Both answers are checked to be the
same, and so are three sampled ones (temperature 0.8, seeds 7, 8 and 9). Medians and
the ratio split / whole; the part's resident memory; and what the link carries per decoded
token: the reads the worker's tunnel makes each way (a read is one
message or a piece of one: about one per request, one per answer) and their bytes.

This measures the RPC path's own cost (the two processes take turns on the same cores);
with ``--netns`` the part runs in a network namespace (the second machine of the specs,
steps/support/remote_host.py), reached over its veth link, as a part on another hive is.
A real network adds its round-trip time to each round trip. Run from the project's
virtualenv (llama.cpp built with ``-DGGML_RPC=ON``; ``--netns`` as root)::

    python benchmarks/bench_split.py [--rounds 5] [--part-layers 12] [--netns]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rbee_core.backends import GenerationParams
from rbee_core.engine_options import EngineOptions
from rbee_core.model_split import ModelPart
from rbee_core.models import LocalModel
from rbee_core.peer_identity import PART_TOKEN_ENV
from rbee_llamacpp import rpc_guard
from rbee_llamacpp.backend import LlamaCppBackend

sys.path.insert(0, str(Path(__file__).parent))
from bench_kv_type import FACTS, STORY, default_model


class Counted:
    """Wraps rpc_guard._pipe (the worker's tunnel copies through it) to count the reads
    and bytes each way: to the part (requests) and from it (answers)."""

    def __init__(self, part_port: int) -> None:
        self.part_port = part_port
        self.reads = {"to part": 0, "from part": 0}
        self.bytes = {"to part": 0, "from part": 0}
        self.copy = rpc_guard._pipe
        rpc_guard._pipe = self.pipe

    def pipe(self, source: Any, sink: Any, done: Any) -> None:
        # The tunnel's local end is on 127.0.0.1 and llama.cpp's; the other end the part's.
        # The tunnel's sockets: llama.cpp's connection to it, and its own to the part.
        way = "from part" if source.getpeername()[1] == self.part_port else "to part"
        counted = self

        class Reader:
            def recv(self, size: int) -> bytes:
                data: bytes = source.recv(size)
                if data:
                    counted.reads[way] += 1
                    counted.bytes[way] += len(data)
                return data

            def __getattr__(self, name: str) -> Any:
                return getattr(source, name)

        self.copy(Reader(), sink, done)  # type: ignore[arg-type]

    def snapshot(self) -> dict[str, int]:
        return {**{f"{k} reads": v for k, v in self.reads.items()}, **self.bytes}


def start_part(token: str, host: str, prefix: list[str]) -> tuple[subprocess.Popen[str], int]:
    part = subprocess.Popen(
        [*prefix, sys.executable, "-m", "rbee_llamacpp.part", "--host", host, "--linger", "3600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, PART_TOKEN_ENV: token},
        text=True,
    )
    assert part.stdout is not None
    said = json.loads(part.stdout.readline())
    assert said.get("type") == "ready", said
    return part, int(said["port"])


def run(model: Any, prompt: str, tokens: int, seed: int | None = None) -> tuple[str, float, float]:
    """(text, seconds to the first token, decode tokens/s after it): greedy, or sampled
    (temperature 0.8) with ``seed``."""
    params = (
        GenerationParams(max_tokens=tokens, temperature=0)
        if seed is None
        else GenerationParams(max_tokens=tokens, temperature=0.8, seed=seed)
    )
    started = time.perf_counter()
    first = 0.0
    count = 0
    text = []
    for chunk in model.generate(prompt, params, lambda: False):
        if not count:
            first = time.perf_counter()
        count += 1
        text.append(chunk.text)
    ended = time.perf_counter()
    return "".join(text), first - started, (count - 1) / (ended - first)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--part-layers", type=int, default=12)
    parser.add_argument("--netns", action="store_true", help="the part in a network namespace")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        host, prefix = "127.0.0.1", []
        if args.netns:
            sys.path.insert(0, str(Path(__file__).parents[1]))
            from steps.support.remote_host import RemoteHost

            work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            remote = RemoteHost(work, {"HOME": str(work)})
            stack.callback(remote.close)
            remote.start()
            host, prefix = remote.address, ["ip", "netns", "exec", remote.namespace]
        measure(args, host, prefix)


def measure(args: argparse.Namespace, host: str, prefix: list[str]) -> None:
    token = secrets.token_hex(16)
    part, port = start_part(token, host, prefix)
    counted = Counted(port)
    try:
        local = LocalModel("smollm2-135m", default_model(), "gguf")
        quiet = lambda *_: None  # noqa: E731
        whole = LlamaCppBackend(EngineOptions()).load(local, "cpu", quiet)
        parts = (ModelPart("bench", f"{host}:{port}", token, args.part_layers),)
        split = LlamaCppBackend(EngineOptions(parts=parts)).load(local, "cpu", quiet)
        found: dict[str, dict[str, list[float]]] = {
            "whole": {"decode": [], "first": []},
            "split": {"decode": [], "first": []},
        }
        link: list[dict[str, float]] = []
        for i in range(args.rounds):
            answers = {}
            for name, model in (("whole", whole), ("split", split)):
                before = counted.snapshot()
                text, _, decode = run(model, STORY, 128)
                if name == "split":
                    after = counted.snapshot()
                    link.append({k: (after[k] - before[k]) / 128 for k in after})
                answers[name] = text
                found[name]["decode"].append(decode)
                _, first, _ = run(model, f"Round {i}. {FACTS} Which flower did bee 9 visit?", 1)
                found[name]["first"].append(first)
            assert answers["whole"] == answers["split"], answers
        for seed in (7, 8, 9):  # sampled: the same logits, the same draws
            sampled = [run(m, STORY, 128, seed)[0] for m in (whole, split)]
            assert sampled[0] == sampled[1], sampled
        part_mib = rss_mib(part.pid)
    finally:
        part.kill()
    median = {n: {k: statistics.median(v) for k, v in m.items()} for n, m in found.items()}
    where = "a network namespace, over veth" if prefix else "this machine's loopback"
    print(
        f"rounds: {args.rounds}; part: {args.part_layers} of 30 layers, on {where}; "
        "answers the same, greedy every round and sampled with 3 seeds"
    )
    print(f"{'':8}{'decode tok/s':>14}{'first token (s)':>17}")
    for name in ("whole", "split"):
        print(f"{name:8}{median[name]['decode']:>14.1f}{median[name]['first']:>17.3f}")
    ratio_decode = median["split"]["decode"] / median["whole"]["decode"]
    ratio_first = median["split"]["first"] / median["whole"]["first"]
    print(f"{'split/whole':8}{ratio_decode:>11.2f}x{ratio_first:>16.2f}x")
    print(f"the part's resident memory: {part_mib:.1f} MiB")
    per_token = {k: statistics.median(d[k] for d in link) for k in link[0]}
    print(
        "the link per decoded token (128 tokens, their prompt included): "
        + ", ".join(
            f"{per_token[f'{w} reads']:.1f} reads and {per_token[w] / 1024:.1f} KiB {w}"
            for w in ("to part", "from part")
        )
    )


if __name__ == "__main__":
    main()
