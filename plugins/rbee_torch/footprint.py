"""What a torch worker will hold in memory for a model, judged before it starts.

The hive calls this to check that a worker fits, so nothing here imports torch or
transformers: it reads the GGUF header or the safetensors headers and ``config.json``, and
sizes the default KV cache from the free memory it is given (the hive's device probe).
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

from rbee_core.backends import Footprint
from rbee_core.engine_options import EngineOptions
from rbee_core.gguf import read_gguf_header
from rbee_core.kv_cache import KvCacheSize
from rbee_core.models import LocalModel
from rbee_torch.dtype import cpu_bf16_features, cpuinfo_flags, parse_dtype

__all__ = ["RUNTIME_BYTES", "default_budget", "element_size", "torch_footprint"]

# What a torch worker holds beside its weights and KV cache: the interpreter, torch,
# transformers, the tokenizer, rbee's server. Measured: 845 MiB resident on the default
# model loaded and idle with 257 MiB of bf16 weights (benchmarks/bench_engines.py).
RUNTIME_BYTES = 600 * 2**20
_ELEMENT = {"fp32": 4, "bf16": 2, "fp16": 2}


def element_size(device: str, asked: str | None) -> int:
    """Bytes per weight in the dtype the worker will choose (``rbee_torch.dtype``), judged
    from ``asked`` (``RBEE_TORCH_DTYPE``) and the CPU's flags rather than by importing torch."""
    if asked:
        return _ELEMENT[parse_dtype(asked)]
    if device.startswith("cuda"):
        return 2  # bf16 on every recent GPU; an older one takes fp32 and needs more
    native = cpu_bf16_features(capabilities={f: True for f in cpuinfo_flags()})
    return 2 if native else 4


def default_budget(device: str, free_memory: int) -> int:
    """The KV cache's bytes when ``RBEE_KV_CACHE`` is unset: a quarter of ``free_memory``
    on a CPU (at most 4 GiB), half of it on a GPU. The caller measures ``free_memory``: the
    hive with its device probe, the worker at load as torch sees it (kv_budget.py)."""
    if device.startswith("cuda"):
        return free_memory // 2
    return min(4 * 2**30, free_memory // 4)


def _safetensors_parameters(folder: Path) -> int:
    total = 0
    for path in folder.glob("*.safetensors"):
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header: dict[str, Any] = json.loads(f.read(length))
        total += sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
    return total


def _config_kv_per_token(folder: Path, element: int) -> int:
    config = json.loads((folder / "config.json").read_text())
    config = config.get("text_config", config)
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    return int(2 * config["num_hidden_layers"] * kv_heads * head_dim * element)


def torch_footprint(
    model: LocalModel, device: str, free_memory: int, options: EngineOptions
) -> Footprint:
    """What a worker started with ``options`` will hold for ``model`` on ``device``, which
    has ``free_memory`` bytes free (see ``rbee_core.backends.SizedBackend``)."""
    element = element_size(device, options.torch_dtype)
    if model.format == "gguf":
        header = read_gguf_header(model.path)
        parameters = header.parameters
        per_token = header.kv_bytes_per_token(element)
    else:
        parameters = _safetensors_parameters(model.path)
        per_token = _config_kv_per_token(model.path, element)
    size = options.kv_cache
    # On a GPU the cache lives in GPU memory, which the hive checks apart from the RAM.
    budget = size or KvCacheSize(bytes=default_budget(device, free_memory))
    tokens = budget.token_slots(per_token)
    return Footprint(parameters * element, RUNTIME_BYTES, per_token, tokens)
