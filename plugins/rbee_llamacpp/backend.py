"""LlamaCppBackend: GGUF files served by llama.cpp in their own quantisation."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rbee_core.backends import Footprint
from rbee_core.batching import EngineSettings
from rbee_core.chat_tools import TOOLS_NATIVE
from rbee_core.engine_options import EngineOptions
from rbee_core.errors import ModelUnavailable
from rbee_core.gguf import GGUFHeader, read_gguf_header
from rbee_core.models import LocalModel
from rbee_core.narration import Narrate
from rbee_llamacpp.gpu import device_refusal, gpu_index, gpu_libraries

if TYPE_CHECKING:
    from rbee_llamacpp.generation import LlamaCppModel

__all__ = ["REPACKED", "LlamaCppBackend", "Slots", "offload_to", "slots_for", "threads"]

# The KV cache when RBEE_KV_CACHE is unset, and the jobs that share it when RBEE_MAX_BATCH is
# unset: 8 jobs at once of up to 2,048 tokens each (prompt and answer), as llama-server's
# -np 8 -c 16384. Chosen by benchmarks/bench_slots.py: 8 jobs at once decode 1.77x the
# tokens/s of one with 8 slots, 1.49x with 4, 1.82x with 16 (docs/benchmarks.md). The room
# check counts the whole cache (377 MB for SmolLM2-135M, 2 GiB for an 8B Llama), but a
# worker holds only what its jobs write (resident_pages.py).
DEFAULT_KV_TOKENS = 16384
DEFAULT_SLOTS = 8
# llama.cpp's limit on sequences in one context (LLAMA_MAX_SEQ), and the granule it rounds
# each sequence's part of the cache up to.
MAX_SLOTS = 256
_PAD = 256
# What a worker holds beside the weights and the KV cache: the interpreter and rbee's
# server, llama.cpp's library and its work buffers. Measured on the default model: 369 MiB
# resident with the whole cache written (as before resident_pages.py), less 94 MiB of weights
# and 180 MiB of cache; the work buffers grow with the vocabulary. The room check counts
# the whole cache: a worker grows to it as its jobs write their cells.
RUNTIME_BYTES = 100 * 2**20
# A part of a split model (rbee_llamacpp/part.py): the interpreter and llama.cpp's library,
# no vocabulary, no server; its layers and their KV cache come on top.
PART_RUNTIME_BYTES = 80 * 2**20
# The files whose weights llama.cpp may repack (RBEE_REPACK): those whose repacked kernels
# give a row of a four-row group the very numbers it gets alone, checked by
# tests/plugins/test_llamacpp.py. Q4_K's do not (a row's logits moved by up to 34 in a
# batch of 4 on an AMD EPYC), and repacked Q4_K was no faster on the default model.
REPACKED = ("Q4_0",)


@dataclass(frozen=True, slots=True)
class Slots:
    """How a worker's KV cache is cut: ``count`` jobs at once, ``tokens`` each."""

    count: int
    tokens: int

    @property
    def cells(self) -> int:
        """What llama.cpp allocates: each slot rounded up to its granule."""
        return self.count * -(-self.tokens // _PAD) * _PAD


def slots_for(header: GGUFHeader, options: EngineOptions) -> Slots:
    """``RBEE_MAX_BATCH`` slots sharing ``RBEE_KV_CACHE`` (or the defaults above); a slot
    never holds more than the model's training context."""
    asked = options.max_batch
    count = min(asked, MAX_SLOTS) if asked else DEFAULT_SLOTS
    size = options.kv_cache
    per_token = kv_bytes_per_token(header, options.kv_type)
    total = size.token_slots(per_token) if size else DEFAULT_KV_TOKENS
    context = header.context_length or total
    return Slots(count, max(1, min(total // count, context)))


def kv_bytes_per_token(header: GGUFHeader, kv_type: str) -> int:
    """What one token takes in a cache of ``kv_type``: f16 is 2 bytes a number, q8_0 34
    bytes a block of 32 (head sizes are multiples of 32)."""
    if kv_type == "q8_0":
        return header.kv_bytes_per_token(34) // 32
    return header.kv_bytes_per_token(2)


def threads(options: EngineOptions) -> int:
    """Threads llama.cpp decodes with: ``RBEE_THREADS``, else the CPUs this process may run
    on (fewer leave room for other work on a shared machine)."""
    if asked := options.threads:
        return asked
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def offload_to(device: str, offload: bool) -> int | None:
    """The GPU a model on ``device`` goes to (``None``: the CPU), given whether the loaded
    library can ``offload`` (``llama_supports_gpu_offload``: built for a GPU and one is
    visible). ``auto`` is GPU 0 when it can offload, else the CPU."""
    if device == "auto":
        return 0 if offload else None
    index = gpu_index(device)
    if index is not None and not offload:
        raise ModelUnavailable(
            f"llama.cpp was built with GPU support but sees no GPU for {device} (is the "
            "driver loaded, CUDA_VISIBLE_DEVICES set?)"
        )
    return index


class LlamaCppBackend:
    """Loads GGUF files with llama.cpp, memory-mapped and never de-quantised."""

    name = "llamacpp"
    formats = ("gguf",)
    part_runtime = PART_RUNTIME_BYTES

    def __init__(
        self, options: EngineOptions | None = None, built_with: list[str] | None = None
    ) -> None:
        """``built_with``: the GPU backends of the installed llama.cpp; by default read
        from its libraries when first asked."""
        self.options = options or EngineOptions()
        self._built_with = built_with

    @property
    def built_with(self) -> list[str]:
        """The GPU backends the installed llama.cpp has (``[]``: CPU only), read once."""
        if self._built_with is None:
            self._built_with = gpu_libraries()
        return self._built_with

    def runs_on(self, device: str) -> str | None:
        return device_refusal(device, self.built_with)

    def footprint(self, model: LocalModel, device: str, free_memory: int) -> Footprint:
        """Its cache is allocated whole at load, of a fixed default size (``slots_for``):
        ``free_memory`` does not change it."""
        if refusal := self.runs_on(device):
            raise ModelUnavailable(refusal)
        header = read_gguf_header(model.path)
        cells = slots_for(header, self.options).cells
        size = model.path.stat().st_size
        per_token = kv_bytes_per_token(header, self.options.kv_type)
        return Footprint(size, RUNTIME_BYTES, per_token, cells)

    def layers(self, model: LocalModel) -> int:
        return read_gguf_header(model.path).arch("block_count")

    def part_command(self, host: str) -> list[str]:
        threads = [f"--threads={self.options.threads}"] if self.options.threads else []
        return [sys.executable, "-m", "rbee_llamacpp.part", "--host", host, *threads]

    def load(self, model: LocalModel, device: str, narrate: Narrate) -> LlamaCppModel:
        if model.format != "gguf":
            raise ModelUnavailable(
                f"the llamacpp backend loads GGUF files, not {model.format!r} ({model.name})"
            )
        if refusal := self.runs_on(device):
            raise ModelUnavailable(refusal)
        # Imported here: only a worker that loads a model pays for llama.cpp's library.
        from rbee_llamacpp.engine import LlamaEngine
        from rbee_llamacpp.generation import LlamaCppModel
        from rbee_llamacpp.library import Context, ContextSettings, Model, gpu_offload

        gpu = offload_to(device, gpu_offload())
        header = read_gguf_header(model.path)
        slots = slots_for(header, self.options)
        n_threads = threads(self.options)
        where = "cpu" if gpu is None else f"cuda:{gpu} (every layer offloaded)"
        remote: list[tuple[int, int]] = []
        if parts := self.options.parts:
            if gpu is not None:
                raise ModelUnavailable(
                    "a model split across hives runs on its worker's CPU for now, not "
                    f"{device}: start it on cpu"
                )
            from rbee_llamacpp.split import reach_parts

            remote = reach_parts(parts, narrate)
            held = header.arch("block_count") - sum(p.layers for p in parts)
            where = (
                f"cpu ({held} layers here, "
                + ", ".join(f"{p.layers} on hive {p.hive}" for p in parts)
                + ")"
            )
        narrate(
            "load_start",
            f"loading {model.name} on {where} with llama.cpp ({header.quantization}, "
            f"{n_threads} threads, {slots.count} jobs at once of up to {slots.tokens:,} "
            f"tokens each{'' if self.options.kv_type == 'f16' else ', a q8_0 KV cache'})",
        )
        started = time.monotonic()
        repack = self.options.repack and header.quantization in REPACKED
        loaded = Model(model.path, gpu, remote, repack)
        chunk = self.options.prefill_chunk
        batch_tokens = max(slots.count, chunk)
        settings = ContextSettings(
            slots.count, slots.tokens, batch_tokens, n_threads, self.options.kv_type
        )
        try:
            context = Context(loaded, settings)
        except BaseException:
            loaded.close()
            raise
        trained = loaded.context_length or slots.tokens
        engine = LlamaEngine(
            context, loaded.vocab, EngineSettings(slots.count, slots.tokens, trained), chunk
        )
        narrate("load_done", f"{model.name} loaded in {time.monotonic() - started:.1f} s")
        ready = LlamaCppModel(loaded, context, engine, header.quantization)
        if ready.knows_tools:
            narrate("chat_tools", TOOLS_NATIVE.format(model=model.name))
        return ready
