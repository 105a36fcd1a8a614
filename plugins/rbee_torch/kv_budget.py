"""How many sequences a worker decodes at once, and how big its KV cache may grow.

``RBEE_MAX_BATCH`` (default 64) caps the sequences per step. ``RBEE_KV_CACHE`` caps the KV
cache, as bytes or with a unit (``512MiB``, ``4GiB``); by default a quarter of the memory
available when the model has loaded on a CPU (at most 4 GiB), half the free memory on a GPU.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from rbee_core.errors import InvalidRequest

__all__ = ["bytes_per_token", "kv_cache_tokens", "max_batch", "parse_size"]

DEFAULT_MAX_BATCH = 64
_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "ki": 2**10, "mi": 2**20, "gi": 2**30}


def parse_size(text: str) -> int:
    """``"512MiB"`` -> 536870912; plain numbers are bytes."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]i?)?b?\s*", text, re.IGNORECASE)
    if not found:
        raise InvalidRequest(f"not a size: {text!r} (try 512MiB or 4GiB)")
    return int(float(found[1]) * _UNITS[(found[2] or "").lower()])


def max_batch(config: Any, env: Mapping[str, str]) -> int:
    """``RBEE_MAX_BATCH``, or 1 for models whose cache cannot be batched here (sliding-window
    layers keep only their window, so rows of different lengths cannot be aligned)."""
    if not all(type(layer) is DynamicLayer for layer in DynamicCache(config=config).layers):
        return 1
    value = env.get("RBEE_MAX_BATCH", str(DEFAULT_MAX_BATCH))
    if not value.isdigit() or int(value) < 1:
        raise InvalidRequest(f"RBEE_MAX_BATCH must be a whole number >= 1, not {value!r}")
    return int(value)


def bytes_per_token(config: Any, element_size: int) -> int:
    """KV cache bytes one token takes: keys and values, every layer, every KV head."""
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return int(2 * config.num_hidden_layers * heads * head_dim * element_size)


def _default_budget(device: str) -> int:
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return free // 2
    available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return min(4 * 2**30, available // 4)


def kv_cache_tokens(model: Any, device: str) -> int:
    """Token slots the KV cache may hold, from ``RBEE_KV_CACHE`` or the default budget."""
    setting = os.environ.get("RBEE_KV_CACHE")
    budget = parse_size(setting) if setting else _default_budget(device)
    per_token = bytes_per_token(model.config, model.dtype.itemsize)
    return max(1, budget // per_token)
