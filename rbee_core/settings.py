"""Every environment variable rbee's programs read, declared once: its name, type, default,
the programs that read it and what it does.

``Setting.read(env)`` is the one way a program reads one: typed, a blank value counting as
unset, and a bad value refused with an error that names the variable and the value. The
"Settings" table of docs/api.md is generated from ``SETTINGS`` (``settings_table``; a unit
test keeps the two equal), and the unit tests' isolation derives its list from it.

Not settings, so not here: the one-time tokens a parent hands its child through the
environment (``RBEE_HIVE_LAUNCH_TOKEN``, ``RBEE_WORKER_TOKEN``, rbee_core.peer_identity),
which are handshakes, and ``GGML_CPU_TILED_MM``, which rbee sets for llama.cpp itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from rbee_core.errors import InvalidRequest, ModelUnavailable, RbeeError
from rbee_core.kv_cache import KvCacheSize, parse_kv_cache

__all__ = [
    "API_KEY",
    "BACKEND",
    "DISABLE_PLUGINS",
    "HF_ENDPOINT",
    "HOME",
    "KEEP_PARTIAL",
    "KV_CACHE",
    "KV_TYPE",
    "KV_TYPES",
    "LOAD_PLUGINS",
    "MAX_BATCH",
    "MODELS_DIR",
    "PREFILL_CHUNK",
    "QUEEN_URL",
    "RAY_ADDRESS",
    "RAY_GRANT_TIMEOUT",
    "RAY_NODE",
    "RAY_WORKER_CPUS",
    "REPACK",
    "SETTINGS",
    "SSE_KEEPALIVE",
    "SSH_COMMAND",
    "THREADS",
    "TORCH_DTYPE",
    "TRACE_PLUGINS",
    "XDG_CACHE_HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "DEFAULT_QUEEN_URL",
    "Setting",
    "isolated_variables",
    "settings_table",
]

T = TypeVar("T")
ALL = ("keeper", "queen", "hive", "worker")
DEFAULT_QUEEN_URL = "http://127.0.0.1:8500"


@dataclass(frozen=True, slots=True)
class Setting(Generic[T]):
    """One environment variable: ``parse`` turns its non-blank text into a ``T`` or raises
    ``ValueError`` saying what it must be; ``default`` applies when unset or blank. Text
    (paths, keys, URLs) comes as it is; numbers, sizes and flags ignore surrounding spaces."""

    name: str
    parse: Callable[[str], T]
    default: T
    programs: tuple[str, ...]
    kind: str  # the type, as the docs table shows it
    default_doc: str  # the default, as the docs table shows it
    description: str
    error: type[RbeeError] = InvalidRequest
    blank_is_unset: bool = True  # False: a set but empty value means something (an empty list)

    def read(self, env: Mapping[str, str] | None = None) -> T:
        """Its value in ``env`` (by default the process's environment)."""
        raw = (os.environ if env is None else env).get(self.name)
        if raw is None or (self.blank_is_unset and not raw.strip()):
            return self.default
        try:
            return self.parse(raw)
        except ValueError as exc:
            raise self.error(f"{self.name} must be {exc}, not {raw.strip()!r}") from None


def _text(value: str) -> str | None:
    return value


def _names(value: str) -> frozenset[str] | None:
    return frozenset(name.strip() for name in value.split(",") if name.strip())


def _whole(value: str) -> int | None:
    value = value.strip()
    if not value.isdigit() or int(value) < 1:
        raise ValueError("a whole number >= 1")
    return int(value)


def _seconds(value: str) -> float:
    try:
        seconds = float(value.strip())
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:  # nan too
        raise ValueError("a number of seconds > 0")
    return seconds


def _cpus(value: str) -> float:
    try:
        cpus = float(value.strip())
    except ValueError:
        cpus = float("nan")
    if not cpus >= 0:
        raise ValueError("a number of CPUs >= 0")
    return cpus


def _yes(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes")


def _switch(value: str) -> bool:
    value = value.strip().lower()
    if value not in ("1", "true", "yes", "0", "false", "no"):
        raise ValueError("`1`/`true`/`yes` or `0`/`false`/`no`")
    return value in ("1", "true", "yes")


def _any(value: str) -> bool:
    return True


def _xdg(var: str, default: str) -> Setting[str | None]:
    return Setting(
        var,
        _text,
        None,
        ALL,
        "path",
        f"`~/{default}`",
        f"where rbee keeps its {var.split('_')[1].lower()} files (`rbee/` in it), unless "
        "`RBEE_HOME` is set",
    )


HOME: Setting[str | None] = Setting(
    "RBEE_HOME",
    _text,
    None,
    ALL,
    "path",
    "unset: the XDG folders",
    "moves all of rbee's files (config, cache, data, state) under one folder: "
    "`config/`, `cache/`, `data/`, `state/`",
)
XDG_CONFIG_HOME = _xdg("XDG_CONFIG_HOME", ".config")
XDG_CACHE_HOME = _xdg("XDG_CACHE_HOME", ".cache")
XDG_DATA_HOME = _xdg("XDG_DATA_HOME", ".local/share")
XDG_STATE_HOME = _xdg("XDG_STATE_HOME", ".local/state")
MODELS_DIR: Setting[str | None] = Setting(
    "RBEE_MODELS_DIR",
    _text,
    None,
    ALL,
    "path",
    "`<cache>/models`",
    "moves only the model cache, so several isolated homes can share one converted model",
)
API_KEY: Setting[str | None] = Setting(
    "RBEE_API_KEY",
    _text,
    None,
    ALL,
    "text",
    "unset: no key",
    "the key every daemon requires and every client sends (`--api-key-file PATH` instead "
    "keeps it off the environment); the queen passes it to the hives and workers it starts",
)
LOAD_PLUGINS: Setting[frozenset[str] | None] = Setting(
    "RBEE_LOAD_PLUGINS",
    _names,
    None,
    ALL,
    "names, comma-separated",
    "unset: every installed plugin",
    "an allow-list of plugin entry-point names; every other plugin is blocked (set but "
    "empty: none)",
    blank_is_unset=False,
)
DISABLE_PLUGINS: Setting[frozenset[str] | None] = Setting(
    "RBEE_DISABLE_PLUGINS",
    _names,
    None,
    ALL,
    "names, comma-separated",
    "unset: none",
    "a block-list of plugin entry-point names (`torch`: run without the torch backend)",
)
TRACE_PLUGINS: Setting[bool] = Setting(
    "RBEE_TRACE_PLUGINS",
    _any,
    False,
    ALL,
    "flag: any value",
    "off",
    "prints every hook call, with its arguments and results, to stderr",
)
QUEEN_URL: Setting[str] = Setting(
    "RBEE_QUEEN_URL",
    str,
    DEFAULT_QUEEN_URL,
    ("keeper",),
    "URL",
    f"`{DEFAULT_QUEEN_URL}`",
    "the queen `rbee-keeper` talks to when no `--queen-url` is given",
)
SSH_COMMAND: Setting[str] = Setting(
    "RBEE_SSH_COMMAND",
    str,
    "ssh",
    ("keeper",),
    "command line",
    "`ssh`",
    "the ssh program (and its options) `rbee-keeper hive install` reaches machines with",
)
SSE_KEEPALIVE: Setting[float] = Setting(
    "RBEE_SSE_KEEPALIVE",
    _seconds,
    15.0,
    ("queen", "hive", "worker"),
    "seconds",
    "15",
    "silence before a `: keep-alive` comment on an event stream; lower it for proxies that "
    "drop idle connections sooner",
)
BACKEND: Setting[str | None] = Setting(
    "RBEE_BACKEND",
    _text,
    None,
    ("hive",),
    "`torch` or `llamacpp`",
    "the best for the model's format",
    "the backend a hive's workers use when a job names none",
)
MAX_BATCH: Setting[int | None] = Setting(
    "RBEE_MAX_BATCH",
    _whole,
    None,
    ("hive", "worker"),
    "whole number >= 1",
    "torch: 64; llama.cpp: 8",
    "most jobs one worker decodes at once (on llama.cpp: its slots)",
)
KV_CACHE: Setting[KvCacheSize | None] = Setting(
    "RBEE_KV_CACHE",
    parse_kv_cache,
    None,
    ("hive", "worker"),
    "size or tokens",
    "torch: a quarter of the free memory, at most 4 GiB (CPU), half the free GPU memory; "
    "llama.cpp: 16384 tokens",
    "the KV cache's size, in bytes (`512MiB`) or tokens (`8192 tokens`). torch's jobs share "
    "it: a job is admitted only when every running job could still reach its `max_tokens`. "
    "llama.cpp allocates it when the model loads and cuts it into one slot per job "
    "(`RBEE_KV_CACHE / RBEE_MAX_BATCH` tokens each, at most the model's training context), "
    "as `llama-server -c 16384 -np 8` does. A job waits for room and is told why; one that "
    "could never fit fails with `invalid_request` naming both sizes. A hive with too little "
    "memory for the default cuts it down to fit.",
)
THREADS: Setting[int | None] = Setting(
    "RBEE_THREADS",
    _whole,
    None,
    ("worker",),
    "whole number >= 1",
    "the CPUs the worker may run on",
    "threads a llama.cpp worker decodes with; fewer leave room for other work on a shared machine",
    error=ModelUnavailable,
)


def _kv_type(value: str) -> str:
    value = value.strip().lower()
    if value not in KV_TYPES:
        raise ValueError(" or ".join(KV_TYPES))
    return value


KV_TYPES = ("f16", "q8_0")
KV_TYPE: Setting[str] = Setting(
    "RBEE_KV_TYPE",
    _kv_type,
    "f16",
    ("hive", "worker"),
    "`f16` or `q8_0`",
    "`f16`",
    "what a llama.cpp worker's KV cache holds each key and value in: `q8_0` takes 53% of "
    "`f16`'s memory (a job's answers stay the same alone and in any batch, but may differ "
    "from `f16`'s), as llama-server's `-ctk q8_0 -ctv q8_0`",
    error=ModelUnavailable,
)
REPACK: Setting[bool] = Setting(
    "RBEE_REPACK",
    _switch,
    True,
    ("hive", "worker"),
    "`1` or `0`",
    "`1`",
    "whether a llama.cpp worker on the CPU keeps a Q4_0 file's weights in llama.cpp's "
    "repacked layout (1.3x the decode speed of `0`; other types stay as in the file: "
    "repacked Q4_K gives a job other numbers in a batch than alone); `0` for a CPU whose "
    "repacked Q4_0 kernels do too (the unit tests check it)",
    error=ModelUnavailable,
)


def _chunk(value: str) -> int:
    value = value.strip()
    if not value.isdigit() or not 1 <= int(value) <= 4096:
        raise ValueError("a whole number from 1 to 4096")
    return int(value)


PREFILL_CHUNK: Setting[int] = Setting(
    "RBEE_PREFILL_CHUNK",
    _chunk,
    63,
    ("hive", "worker"),
    "tokens, 1 to 4096",
    "`63`",
    "prompt tokens a llama.cpp worker feeds in one call. Up to 63, flash attention takes "
    "one query at a time, and a new job reuses any cached prefix it shares; `512` "
    "processes prompts up to 1.5x as fast, but a new job then reuses only whole 512-token "
    "chunks of a cached prompt (a shorter system prompt or chat is fed again), so that it "
    "still answers as fed whole (docs/benchmarks.md)",
    error=ModelUnavailable,
)
TORCH_DTYPE: Setting[str | None] = Setting(
    "RBEE_TORCH_DTYPE",
    _text,
    None,
    ("hive", "worker"),
    "`fp32`, `bf16` or `fp16`",
    "bf16 where the CPU (avx512_bf16, AMX) or GPU (compute capability 8+) does bf16 "
    "natively, else fp32",
    "the dtype torch workers load models in (checked by rbee_torch.dtype)",
)
KEEP_PARTIAL: Setting[bool] = Setting(
    "RBEE_KEEP_PARTIAL",
    _yes,
    False,
    ("keeper", "hive"),
    "`1`, `true` or `yes`",
    "off",
    "keeps a download that ran out of room, so the next attempt resumes it, rather than "
    "freeing the disk",
)
HF_ENDPOINT: Setting[str | None] = Setting(
    "HF_ENDPOINT",
    _text,
    None,
    ("keeper", "hive"),
    "URL",
    "huggingface_hub's",
    "the Hugging Face hub `hf:` models come from (huggingface_hub's own variable)",
)
RAY_ADDRESS: Setting[str | None] = Setting(
    "RBEE_RAY_ADDRESS",
    _text,
    None,
    ("queen", "hive"),
    "Ray address",
    "unset: no Ray",
    "the Ray cluster the queen starts its hives on (`queen-rbee --ray` sets it)",
)
RAY_NODE: Setting[str | None] = Setting(
    "RBEE_RAY_NODE",
    _text,
    None,
    ("hive",),
    "Ray node id",
    "unset",
    "the Ray node a hive runs on; set by the queen's hive actor, not by hand",
)
RAY_WORKER_CPUS: Setting[float] = Setting(
    "RBEE_RAY_WORKER_CPUS",
    _cpus,
    1.0,
    ("hive",),
    "CPUs",
    "1",
    "the CPUs each worker of a hive on Ray reserves",
)
RAY_GRANT_TIMEOUT: Setting[float] = Setting(
    "RBEE_RAY_GRANT_TIMEOUT",
    _seconds,
    600.0,
    ("hive",),
    "seconds",
    "600",
    "how long a hive on Ray waits for Ray to grant a worker its resources before failing",
)

SETTINGS: tuple[Setting[Any], ...] = (
    HOME,
    XDG_CONFIG_HOME,
    XDG_CACHE_HOME,
    XDG_DATA_HOME,
    XDG_STATE_HOME,
    MODELS_DIR,
    API_KEY,
    LOAD_PLUGINS,
    DISABLE_PLUGINS,
    TRACE_PLUGINS,
    QUEEN_URL,
    SSH_COMMAND,
    SSE_KEEPALIVE,
    BACKEND,
    MAX_BATCH,
    KV_CACHE,
    KV_TYPE,
    REPACK,
    PREFILL_CHUNK,
    THREADS,
    TORCH_DTYPE,
    KEEP_PARTIAL,
    HF_ENDPOINT,
    RAY_ADDRESS,
    RAY_NODE,
    RAY_WORKER_CPUS,
    RAY_GRANT_TIMEOUT,
)
"""Every setting, in the order the docs table lists them."""


def isolated_variables() -> tuple[str, ...]:
    """rbee's own variables (``RBEE_*``), which a test run clears so none leaks in."""
    return tuple(s.name for s in SETTINGS if s.name.startswith("RBEE_"))


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("|", "\\|")


def settings_table() -> str:
    """The "Settings" table of docs/api.md, as Markdown."""
    rows = [
        "| variable | programs | type | default | what it does |",
        "| --- | --- | --- | --- | --- |",
    ]
    for s in SETTINGS:
        programs = "all" if s.programs == ALL else ", ".join(s.programs)
        cells = (f"`{s.name}`", programs, s.kind, s.default_doc, s.description)
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows) + "\n"
