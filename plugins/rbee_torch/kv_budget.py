"""How many sequences a torch worker decodes at once, and how big its KV cache may grow.

The settings (``RBEE_MAX_BATCH``, ``RBEE_KV_CACHE``) come typed in ``EngineOptions``. The
torch cache grows as jobs run, so its default may be generous: a quarter of the memory
available when the model has loaded on a CPU (at most 4 GiB), half the free memory on a GPU.
"""

from __future__ import annotations

import os
from typing import Any

from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from rbee_core.kv_cache import DEFAULT_MAX_BATCH, KvCacheSize
from rbee_torch.footprint import default_budget

__all__ = ["bytes_per_token", "free_memory", "kv_cache_tokens", "max_batch"]


def max_batch(config: Any, asked: int | None) -> int:
    """``RBEE_MAX_BATCH``, or 1 for models whose cache cannot be batched here (sliding-window
    layers keep only their window, so rows of different lengths cannot be aligned)."""
    if not all(type(layer) is DynamicLayer for layer in DynamicCache(config=config).layers):
        return 1
    return asked or DEFAULT_MAX_BATCH


def bytes_per_token(config: Any, element_size: int) -> int:
    """KV cache bytes one token takes: keys and values, every layer, every KV head."""
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return int(2 * config.num_hidden_layers * heads * head_dim * element_size)


def free_memory(device: str) -> int:
    """Bytes free on ``device`` now, as the worker finds them once its model has loaded: a
    GPU's as torch sees it (the worker holds a CUDA context already), the RAM not in use."""
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def kv_cache_tokens(model: Any, device: str, asked: KvCacheSize | None) -> int:
    """Token slots the KV cache may hold: ``asked`` (``RBEE_KV_CACHE``) or the default
    budget."""
    size = asked or KvCacheSize(bytes=default_budget(device, free_memory(device)))
    return size.token_slots(bytes_per_token(model.config, model.dtype.itemsize))
