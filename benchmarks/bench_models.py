"""Model loading: the cached safetensors copy against the GGUF file, and first use.

Each measurement runs in a fresh Python process (a cold start, as a new worker has), the
variants interleaved in one loop so a busy machine slows them alike:

- ``cached``: TorchBackend.load of the default model whose converted copy is in the cache
  (what every worker after the first does);
- ``gguf``: transformers ``from_pretrained(..., gguf_file=...)`` straight from the GGUF
  (what loading without rbee's cache costs every time);
- ``first use``: a fresh model cache: TorchBackend.load converts the GGUF once, then loads.
- the catalog's one-off sha256 check of the GGUF against pip's RECORD.

Times are from the start of the load call to a model ready to generate; the process's own
start (Python, torch import) is reported apart. Run:

    python benchmarks/bench_models.py [--runs 5] [--gguf-runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import torch, transformers  # noqa: F401  (the import every worker pays)
from rbee_core.plugins import create_plugin_manager, model_catalog
t1 = time.perf_counter()
mode = sys.argv[1]
local = model_catalog(create_plugin_manager()).provision("smollm2-135m", lambda *a, **k: None)
t2 = time.perf_counter()
if mode == "gguf":
    from transformers import AutoModelForCausalLM, AutoTokenizer
    AutoTokenizer.from_pretrained(local.path.parent, gguf_file=local.path.name)
    AutoModelForCausalLM.from_pretrained(local.path.parent, gguf_file=local.path.name)
elif mode == "sha256":
    from rbee_models.download import sha256_of
    sha256_of(local.path)
else:
    from rbee_torch.backend import TorchBackend
    TorchBackend().load(local, "cpu", lambda *a, **k: None)
t3 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "load": t3 - t2}))
"""


def child(mode: str, models_dir: str, home: str) -> dict[str, float]:
    env = {
        **os.environ,
        "RBEE_MODELS_DIR": models_dir,
        "RBEE_HOME": home,
        "HOME": home,
        "TRANSFORMERS_VERBOSITY": "error",
    }
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode], env=env, capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=5, help="cached loads (default 5)")
    p.add_argument("--gguf-runs", type=int, default=3, help="GGUF and first-use loads (3)")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args()
    results: dict[str, list[float]] = {"cached": [], "gguf": [], "first use": [], "sha256": []}
    imports: list[float] = []
    with tempfile.TemporaryDirectory(prefix="rbee-bench-") as tmp:
        shared = str(Path(tmp) / "models")
        child("cached", shared, tmp)  # converts once: later "cached" runs load the copy
        for i in range(max(args.runs, args.gguf_runs)):
            order = ["cached", "gguf", "first use", "sha256"]
            for mode in order[i % 4 :] + order[: i % 4]:
                if i >= (args.runs if mode == "cached" else args.gguf_runs):
                    continue
                models = str(Path(tmp) / f"fresh-{i}") if mode == "first use" else shared
                r = child("cached" if mode == "first use" else mode, models, tmp)
                results[mode].append(r["load"])
                imports.append(r["imports"])
                print(f"run {i + 1} {mode}: {r['load']:.2f} s", file=sys.stderr)
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"## model loading ({os.cpu_count()} CPUs, torch threads default)\n")
    print("| what | n | median | min | max |")
    print("| --- | --- | --- | --- | --- |")
    for key, label in [
        ("cached", "cached safetensors load (TorchBackend.load)"),
        ("gguf", "GGUF load straight from the file (transformers)"),
        ("first use", "first use: convert once, then load"),
        ("sha256", "catalog's one-off sha256 check of the GGUF"),
    ]:
        v = results[key]
        print(f"| {label} | {len(v)} | {med[key]:.2f} s | {min(v):.2f} s | {max(v):.2f} s |")
    print(
        f"| process start: python + torch/transformers import | {len(imports)} | "
        f"{statistics.median(imports):.2f} s | {min(imports):.2f} s | {max(imports):.2f} s |"
    )
    print(
        f"\ncached vs GGUF: {med['gguf'] / med['cached']:.1f}x faster "
        f"({med['cached']:.2f} s vs {med['gguf']:.2f} s, medians)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": results, "imports": imports}, indent=2))


if __name__ == "__main__":
    main()
