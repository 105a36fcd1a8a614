"""Ollama's sampling ``options``, ``format`` and ``keep_alive``, as rbee job fields.

What rbee honours maps onto the job; options that would change the answer in a way rbee
cannot are refused by name (400), as are options Ollama does not know.
"""

from __future__ import annotations

import math
import re
from typing import Any

from rbee_ollama.errors import OllamaError
from rbee_openai.requests import DEFAULT_CHAT_MAX_TOKENS

__all__ = ["UNBOUNDED", "UNLOAD_AFTER", "parse_format", "parse_keep_alive", "parse_options"]

# No num_predict, or Ollama's -1 (until the model ends) and -2 (fill the context): rbee's
# default answer length for a chat (as /v1/chat/completions'), which any worker's slot
# holds; done_reason "length" says when an answer stopped there.
UNBOUNDED = DEFAULT_CHAT_MAX_TOKENS
SAMPLING = ("temperature", "top_p", "top_k", "seed", "stop")
# Accepted and ignored: how llama.cpp runs (threads, batch, GPU layers, memory mapping,
# NUMA), not what it answers; rbee's hive places and sizes workers itself. num_ctx too: the
# worker's context is what the hive sized for its memory, and rbee never cuts a prompt to
# fit a smaller one (a prompt too long for the worker fails its job), so an answer does not
# depend on it. num_keep only matters when Ollama cuts a prompt, which rbee never does.
IGNORED = (
    "num_ctx",
    "num_keep",
    "num_thread",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "low_vram",
    "f16_kv",
    "use_mmap",
    "use_mlock",
    "numa",
    "vocab_only",
    "embedding_only",
    # Only matter when repeat_penalty is not 1 or mirostat is on, both refused below.
    "repeat_last_n",
    "penalize_newline",
    "mirostat_tau",
    "mirostat_eta",
)
# Accepted when they ask for what rbee does: no penalty, no mirostat, no tail cuts.
DEFAULT_ONLY: dict[str, Any] = {
    "repeat_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
    "mirostat": 0,
    "tfs_z": 1.0,
    "typical_p": 1.0,
    "min_p": 0.0,
    "logits_all": False,
}

# After this much idleness the hive stops a worker: Ollama's keep_alive 0, "unload after".
UNLOAD_AFTER = 0.001
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_options(options: Any) -> dict[str, Any]:
    """Job fields (``temperature``, ``top_p``, ``top_k``, ``seed``, ``stop``,
    ``max_tokens``) from Ollama's ``options``."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise OllamaError('options must be an object, e.g. {"temperature": 0}')
    known = {*SAMPLING, "num_predict", *IGNORED, *DEFAULT_ONLY}
    unknown = sorted(name for name in options if name not in known)
    if unknown:
        raise OllamaError(
            f"unsupported option{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
            "(rbee honours temperature, top_p, top_k, seed, num_predict and stop)"
        )
    for name, default in DEFAULT_ONLY.items():
        value = options.get(name)
        if value is not None and value != default:
            raise OllamaError(
                f"option {name}={value!r} is not supported by rbee (only {default!r})"
            )
    fields = {name: options[name] for name in SAMPLING if options.get(name) is not None}
    limit = options.get("num_predict")
    if limit is not None:
        fields["max_tokens"] = UNBOUNDED if limit in (-1, -2) else limit
    return fields


def parse_format(value: Any) -> dict[str, Any] | None:
    """``format``: ``"json"`` (any JSON object) or a JSON Schema, as the job's
    ``response_format`` (decoding constrained to it); ``""`` or none: free text."""
    if value is None or value == "":
        return None
    if value == "json":
        return {"type": "json_object"}
    if isinstance(value, dict):
        return {"type": "json_schema", "json_schema": {"name": "format", "schema": value}}
    raise OllamaError(f'format must be "json" or a JSON Schema object, got {value!r}')


def parse_keep_alive(value: Any) -> float | None:
    """``keep_alive`` as the job's: seconds (a number) or a Go duration (``"5m"``,
    ``"1h30m"``, ``"0"``); negative keeps the worker loaded (-1), 0 unloads it once idle."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise OllamaError(f'keep_alive must be a duration such as "5m" or seconds, got {value!r}')
    seconds = _duration(value) if isinstance(value, str) else float(value)
    if not math.isfinite(seconds):
        raise OllamaError(f"keep_alive must be finite, got {value!r}")
    if seconds < 0:
        return -1.0
    return seconds if seconds > 0 else UNLOAD_AFTER


def _duration(text: str) -> float:
    """A Go ``time.ParseDuration`` string in seconds (Ollama parses keep_alive with it)."""
    raw = text.strip()
    sign = -1.0 if raw.startswith("-") else 1.0
    body = raw.lstrip("+-")
    if body == "0":
        return 0.0
    parts = _DURATION.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        raise OllamaError(
            f'keep_alive {text!r} is not a duration: use e.g. "30s", "5m", "1h30m", or seconds'
        )
    return sign * sum(float(n) * _UNIT[u] for n, u in parts)
