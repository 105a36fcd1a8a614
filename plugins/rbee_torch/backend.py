"""TorchBackend: loads models with transformers' AutoModelForCausalLM."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rbee_core.backends import Footprint
from rbee_core.batching import EngineSettings
from rbee_core.chat_tools import TOOLS_NATIVE
from rbee_core.engine_options import EngineOptions
from rbee_core.errors import ModelUnavailable
from rbee_core.model_split import split_refusal
from rbee_core.models import LocalModel
from rbee_core.narration import Narrate
from rbee_torch.convert import ensure_safetensors
from rbee_torch.dtype import choose_dtype
from rbee_torch.footprint import torch_footprint

if TYPE_CHECKING:
    from rbee_torch.generation import TorchModel

__all__ = ["TorchBackend", "engine_settings", "pick_device", "torch_model"]


def pick_device(device: str) -> str:
    """``auto`` is the first CUDA GPU if there is one, else the CPU."""
    import torch

    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelUnavailable(f"device {device!r} requested, but torch sees no CUDA GPU")
    return device


def engine_settings(weights: Any, device: str, options: EngineOptions) -> EngineSettings:
    """The engine's settings for a loaded model: the operator's ``options`` (max batch, KV
    cache) and the model's trained context."""
    from rbee_torch.kv_budget import kv_cache_tokens, max_batch

    kv_tokens = kv_cache_tokens(weights, device, options.kv_cache)
    # Most configs have it (GPT-2's maps its n_positions onto it); one without is bounded
    # by its cache alone.
    context = getattr(weights.config, "max_position_embeddings", None)
    return EngineSettings(
        max_batch(weights.config, options.max_batch), kv_tokens, context or kv_tokens
    )


def torch_model(
    weights: Any, tokenizer: Any, device: str, options: EngineOptions | None = None
) -> TorchModel:
    """A loaded model, with the engine that decodes its jobs built from its settings."""
    from rbee_torch.batching import BatchEngine
    from rbee_torch.generation import TorchModel, eos_ids

    engine = BatchEngine(
        weights,
        eos_ids(weights, tokenizer),
        engine_settings(weights, device, options or EngineOptions()),
    )
    return TorchModel(weights, tokenizer, device, engine)


class TorchBackend:
    """Safetensors folders load directly; GGUF files are converted once, then loaded."""

    name = "torch"
    formats = ("safetensors", "gguf")
    converts = ("gguf",)  # de-quantised: a backend that runs GGUF as it is goes first

    def __init__(self, options: EngineOptions | None = None) -> None:
        self.options = options or EngineOptions()

    def footprint(self, model: LocalModel, device: str, free_memory: int) -> Footprint:
        return torch_footprint(model, device, free_memory, self.options)

    def load(self, model: LocalModel, device: str, narrate: Narrate) -> TorchModel:
        # Imported here, not at module level: every rbee process loads this plugin, and only
        # workers should pay for importing torch.
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self.options.parts:
            raise ModelUnavailable(split_refusal("torch"))
        device = pick_device(device)
        # Before converting a GGUF (half a minute): a bad RBEE_TORCH_DTYPE fails at once.
        choice = choose_dtype(device, self.options.torch_dtype)
        folder: Path
        if model.format == "gguf":
            folder = ensure_safetensors(model, narrate)
        elif model.format == "safetensors":
            folder = model.path
        else:
            raise ModelUnavailable(
                f"the torch backend cannot load {model.format!r} models ({model.name})"
            )
        narrate(
            "load_start", f"loading {model.name} on {device} in {choice.name} ({choice.reason})"
        )
        started = time.monotonic()
        tokenizer = AutoTokenizer.from_pretrained(folder)
        weights = AutoModelForCausalLM.from_pretrained(folder, dtype=choice.torch_dtype)
        weights = weights.to(device).eval()  # type: ignore[arg-type]
        narrate("load_done", f"{model.name} loaded in {time.monotonic() - started:.1f} s")
        ready = torch_model(weights, tokenizer, device, self.options)
        if ready.knows_tools:
            narrate("chat_tools", TOOLS_NATIVE.format(model=model.name))
        return ready
