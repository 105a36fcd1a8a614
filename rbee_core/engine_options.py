"""What the operator asked of an inference engine, read once from the environment.

A worker builds one ``EngineOptions`` in its ``main`` and the hive one in its own (to size
the workers it will start, which inherit its environment); both pass it to the backends
they register (``rbee_register_backends(register, options)``), so a backend never reads
the environment itself and a test hands it options, not a patched ``os.environ``.

Each field is ``None`` when the operator left it unset: the backend then picks its own
default (see its ``footprint``). The variables are declared in rbee_core.settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rbee_core.kv_cache import KvCacheSize
from rbee_core.model_split import ModelPart
from rbee_core.settings import (
    KV_CACHE,
    KV_TYPE,
    MAX_BATCH,
    PREFILL_CHUNK,
    REPACK,
    THREADS,
    TORCH_DTYPE,
)

__all__ = ["EngineOptions"]


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """``RBEE_MAX_BATCH``, ``RBEE_KV_CACHE``, ``RBEE_KV_TYPE``, ``RBEE_REPACK``,
    ``RBEE_PREFILL_CHUNK``, ``RBEE_THREADS`` and ``RBEE_TORCH_DTYPE``, typed. A bad value
    fails in ``from_env``, when the program starts, naming the variable."""

    max_batch: int | None = None
    kv_cache: KvCacheSize | None = None
    threads: int | None = None
    torch_dtype: str | None = None
    kv_type: str = "f16"  # llama.cpp's cache: f16 or q8_0
    repack: bool = REPACK.default  # llama.cpp's repacked weight layouts on the CPU
    prefill_chunk: int = PREFILL_CHUNK.default  # prompt tokens a llama.cpp call takes
    # A split worker's parts on other hives (given by its hive, not the operator).
    parts: tuple[ModelPart, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EngineOptions:
        """The options ``env`` (by default the process's environment) sets."""
        dtype = (TORCH_DTYPE.read(env) or "").strip()
        return cls(
            max_batch=MAX_BATCH.read(env),
            kv_cache=KV_CACHE.read(env),
            threads=THREADS.read(env),
            torch_dtype=dtype or None,
            kv_type=KV_TYPE.read(env),
            repack=REPACK.read(env),
            prefill_chunk=PREFILL_CHUNK.read(env),
        )
