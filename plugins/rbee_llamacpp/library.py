"""llama.cpp through llama-cpp-python's low-level bindings: the model, its context and its
vocabulary, with the C calls kept in one place.

Imported only by a worker that loads a model (it loads the shared library).
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import os
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp as llama

from rbee_core.errors import ModelUnavailable
from rbee_llamacpp.gpu import RPC_BUILD_HINT, library_folder
from rbee_llamacpp.resident_pages import (
    anonymous_memory,
    give_back_file_pages,
    give_back_zero_pages,
)

__all__ = [
    "cpu_weight_layouts",
    "Context",
    "ContextSettings",
    "Model",
    "QUANTIZATIONS",
    "Pieces",
    "Vocab",
    "add_rpc_server",
    "gpu_offload",
    "quantize",
    "serve_rpc",
]

log = logging.getLogger("rbee.llamacpp")

_init_lock = threading.Lock()
_initialised = False
# llama.cpp calls this for every line it logs; keep a reference so it is never collected.
_LOG_LEVELS = {3: logging.WARNING, 4: logging.ERROR}  # GGML_LOG_LEVEL_WARN, _ERROR


@llama.llama_log_callback  # type: ignore[untyped-decorator]
def _log(level: int, text: bytes, _user: Any) -> None:
    # Loading logs hundreds of INFO lines; keep warnings and errors, in the worker's log.
    if level in _LOG_LEVELS:
        log.log(_LOG_LEVELS[level], "%s", text.decode(errors="replace").rstrip())


# ggml_backend_dev_type's GGML_BACKEND_DEVICE_TYPE_GPU and _IGPU (ggml-backend.h).
_GPU_DEVICE_TYPES = (1, 2)


def _init() -> None:
    global _initialised
    with _init_lock:
        if not _initialised:
            # ggml's tiled K-quant kernels take over from 8 rows: a job's numbers would then
            # depend on how many others share its batch.
            os.environ.setdefault("GGML_CPU_TILED_MM", "0")
            llama.llama_log_set(_log, ctypes.c_void_p(0))
            llama.llama_backend_init()
            _initialised = True


def gpu_offload() -> bool:
    """Whether this llama.cpp can put layers on a GPU: built for one, and one is visible.
    (``llama_supports_gpu_offload`` alone says yes for any build with the RPC backend.)"""
    _init()
    if not llama.llama_supports_gpu_offload():
        return False
    ggml = _ggml()
    for index in range(ggml.ggml_backend_dev_count()):
        device = ggml.ggml_backend_dev_get(index)
        kind = ggml.ggml_backend_dev_type(device)
        name = ggml.ggml_backend_dev_name(device) or b""
        if kind in _GPU_DEVICE_TYPES and not name.startswith(b"RPC"):
            return True
    return False


def _rpc_library() -> ctypes.CDLL:
    """ggml's RPC backend (``libggml-rpc``, built with ``-DGGML_RPC=ON``), loaded beside
    llama.cpp's own; ``ModelUnavailable`` naming the build flag when it is missing."""
    _init()
    folder = library_folder()
    found = sorted(folder.glob("libggml-rpc.*")) if folder else []
    if not found or not llama.llama_supports_rpc():
        raise ModelUnavailable(
            "the installed llama.cpp was built without RPC support, which a model split "
            f"across hives needs; rebuild it with: {RPC_BUILD_HINT}"
        )
    lib = ctypes.CDLL(str(found[0]))
    lib.ggml_backend_rpc_add_server.argtypes = [ctypes.c_char_p]
    lib.ggml_backend_rpc_add_server.restype = ctypes.c_void_p
    lib.ggml_backend_rpc_start_server.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_size_t,
        ctypes.POINTER(ctypes.c_void_p),
    ]
    lib.ggml_backend_rpc_start_server.restype = None
    return lib


def _ggml() -> ctypes.CDLL:
    folder = library_folder()
    assert folder is not None
    lib = ctypes.CDLL(str(sorted(folder.glob("libggml.*"))[0]))
    lib.ggml_backend_register.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_reg_dev_get.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    lib.ggml_backend_reg_dev_get.restype = ctypes.c_void_p
    lib.ggml_backend_dev_count.restype = ctypes.c_size_t
    lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    lib.ggml_backend_dev_get.restype = ctypes.c_void_p
    lib.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_dev_type.restype = ctypes.c_int
    lib.ggml_backend_dev_name.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_dev_name.restype = ctypes.c_char_p
    lib.ggml_backend_dev_by_type.argtypes = [ctypes.c_int]
    lib.ggml_backend_dev_by_type.restype = ctypes.c_void_p
    lib.ggml_backend_dev_backend_reg.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_dev_backend_reg.restype = ctypes.c_void_p
    lib.ggml_backend_reg_get_proc_address.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.ggml_backend_reg_get_proc_address.restype = ctypes.c_void_p
    lib.ggml_backend_buft_name.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_buft_name.restype = ctypes.c_char_p
    return lib


def cpu_weight_layouts() -> list[str]:
    """The CPU's extra weight layouts in this llama.cpp (``use_extra_bufts``), by ggml's
    names: ``CPU_REPACK``, and where built and supported ``AMX`` or ``CPU_KLEIDIAI``."""
    _init()
    ggml = _ggml()
    cpu = ggml.ggml_backend_dev_by_type(0)  # GGML_BACKEND_DEVICE_TYPE_CPU
    reg = ggml.ggml_backend_dev_backend_reg(cpu)
    found = ggml.ggml_backend_reg_get_proc_address(reg, b"ggml_backend_dev_get_extra_bufts")
    if not found:
        return []
    listed = ctypes.CFUNCTYPE(ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p)(found)(cpu)
    names: list[str] = []
    while listed and listed[len(names)]:
        names.append(ggml.ggml_backend_buft_name(listed[len(names)]).decode())
    return names


# llama_ftype of each quantisation ``quantize`` makes (llama.h).
QUANTIZATIONS = {"Q4_0": 2, "Q4_1": 3, "Q8_0": 7, "Q4_K_M": 15, "Q5_K_M": 17, "Q6_K": 18}


def quantize(source: Path, target: Path, quantization: str, threads: int = 0) -> None:
    """Write ``source`` requantised to ``quantization`` (a key of ``QUANTIZATIONS``) at
    ``target``, as llama.cpp's ``llama-quantize --allow-requantize`` does."""
    _init()
    params = llama.llama_model_quantize_default_params()
    params.ftype = QUANTIZATIONS[quantization]
    params.allow_requantize = True
    params.nthread = threads
    if llama.llama_model_quantize(str(source).encode(), str(target).encode(), params) != 0:
        raise ModelUnavailable(f"llama.cpp could not quantise {source.name} to {quantization}")


def add_rpc_server(endpoint: str) -> int:
    """The device of the RPC server at ``endpoint`` (its first), for ``Model``'s
    ``remote``."""
    reg = _rpc_library().ggml_backend_rpc_add_server(endpoint.encode())
    if not reg:
        raise ModelUnavailable(f"the RPC server at {endpoint} offers no device")
    ggml = _ggml()
    ggml.ggml_backend_register(reg)
    device = ggml.ggml_backend_reg_dev_get(reg, 0)
    if not device:
        raise ModelUnavailable(f"the RPC server at {endpoint} offers no device")
    return int(device)


def serve_rpc(endpoint: str, threads: int) -> None:
    """Serve this machine's CPU to RPC clients at ``endpoint`` (``127.0.0.1:port``);
    never returns (llama.cpp's server has no stop: its process ends)."""
    rpc = _rpc_library()
    cpu = _ggml().ggml_backend_dev_by_type(0)  # GGML_BACKEND_DEVICE_TYPE_CPU
    devices = (ctypes.c_void_p * 1)(cpu)
    rpc.ggml_backend_rpc_start_server(endpoint.encode(), None, threads, 1, devices)


class Vocab:
    """Tokens and text, and the model's chat template, for one loaded model."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._vocab = llama.llama_model_get_vocab(model)
        self.size = int(llama.llama_vocab_n_tokens(self._vocab))

    def tokenize(self, text: str, add_special: bool) -> list[int]:
        """Token ids of ``text``; special tokens written in it (``<|im_start|>``) count as
        such, as in llama.cpp's own server. ``add_special`` adds the model's BOS if it has
        one."""
        data = text.encode()
        room = len(data) + 8
        ids = (llama.llama_token * room)()
        n = llama.llama_tokenize(self._vocab, data, len(data), ids, room, add_special, True)
        if n < 0:  # too small a buffer: -n is what it needs
            room = -n
            ids = (llama.llama_token * room)()
            n = llama.llama_tokenize(self._vocab, data, len(data), ids, room, add_special, True)
        return list(ids[:n])

    def piece(self, token: int, special: bool = False) -> bytes:
        """The bytes of one token (control tokens are empty unless ``special``)."""
        buf = ctypes.create_string_buffer(64)
        n = llama.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, special)
        return buf.raw[:n]

    def is_end(self, token: int) -> bool:
        """End of generation: EOS, EOT, ``<|im_end|>`` and the like."""
        return bool(llama.llama_vocab_is_eog(self._vocab, token))

    def guide(self) -> Any:
        """The vocabulary as llguidance reads it, for constrained decoding (about a second
        to build: the model keeps it)."""
        from llguidance.llamacpp import lltokenizer_from_vocab

        ends = [t for t in range(self.size) if self.is_end(t)]
        with warnings.catch_warnings():  # it calls a deprecated alias once per token
            warnings.simplefilter("ignore", DeprecationWarning)
            return lltokenizer_from_vocab(self._vocab, n_vocab=self.size, eos_token=ends)

    def special_text(self, token: int) -> str:
        return "" if token < 0 else self.piece(token, special=True).decode(errors="replace")

    @property
    def bos(self) -> str:
        return self.special_text(llama.llama_vocab_bos(self._vocab))

    @property
    def eos(self) -> str:
        return self.special_text(llama.llama_vocab_eos(self._vocab))

    def chat_template(self) -> str | None:
        """The Jinja chat template in the GGUF's metadata, if it has one."""
        raw = llama.llama_model_chat_template(self._model, None)
        return raw.decode() if raw else None


class Pieces:
    """Token bytes to text, whole characters only: a token may hold half of an emoji."""

    def __init__(self, vocab: Vocab) -> None:
        self._vocab = vocab
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token: int) -> str:
        return str(self._utf8.decode(self._vocab.piece(token)))

    def flush(self) -> str:
        return str(self._utf8.decode(b"", final=True))


class Model:
    """A GGUF model's weights, memory-mapped as they are in the file (never de-quantised)."""

    def __init__(
        self,
        path: Path,
        gpu: int | None = None,
        remote: Sequence[tuple[int, int]] = (),
        repack: bool = False,
    ) -> None:
        """Load ``path`` on the CPU, or with ``gpu`` every layer on that GPU alone; with
        ``remote`` (RPC device from ``add_rpc_server``, layers) the last layers on those
        devices, in order, the rest on the CPU. ``repack``: the CPU's layers in llama.cpp's
        repacked layouts (``RBEE_REPACK``)."""
        _init()
        params = llama.llama_model_default_params()
        split = devices = None
        if remote:
            # The devices named, not llama.cpp's pick of every registered one.
            devices = (ctypes.c_void_p * (len(remote) + 1))(*(d for d, _ in remote), None)
            params.devices = ctypes.cast(devices, ctypes.c_void_p)
            params.n_gpu_layers = sum(layers for _, layers in remote)
            params.split_mode = llama.LLAMA_SPLIT_MODE_LAYER
            split = (ctypes.c_float * max(len(remote), llama.llama_max_devices()))(
                *(float(layers) for _, layers in remote)
            )
            params.tensor_split = ctypes.cast(split, ctypes.POINTER(ctypes.c_float))
            # Read, not mapped: the layers sent away must not stay resident here too.
            params.load_mode = llama.LLAMA_LOAD_MODE_NONE
        elif gpu is None:
            params.n_gpu_layers = 0
        else:
            params.n_gpu_layers = -1  # all of them
            params.split_mode = llama.LLAMA_SPLIT_MODE_NONE
            params.main_gpu = gpu
        # Repacked copies of the weights: 1.3x the decode speed on Q4_0. Their kernels take
        # four rows of a batch at a time and the rest one by one; for Q4_0 both give a row
        # the same numbers (the unit tests check it where they run), so a job answers the
        # same in any batch (the backend asks for it on Q4_0 files only). Only where
        # repacking is the one extra layout: AMX's kernels fault on some virtual machines,
        # and neither they nor KleidiAI's are checked for it.
        self.repacked = repack and cpu_weight_layouts() == ["CPU_REPACK"]
        params.use_extra_bufts = self.repacked
        handle = llama.llama_model_load_from_file(str(path).encode(), params)
        if not handle:
            raise ModelUnavailable(
                f"llama.cpp cannot load {path.name}: not a GGUF model it knows "
                "(see the worker's log for llama.cpp's reason)"
            )
        self.handle = handle
        if self.repacked and gpu is None and not remote:
            give_back_file_pages(path)  # the repacked copy is what decoding reads
        self.vocab = Vocab(handle)
        self.context_length = int(llama.llama_model_n_ctx_train(handle))
        buf = ctypes.create_string_buffer(128)
        llama.llama_model_desc(handle, buf, len(buf))
        self.description = buf.value.decode(errors="replace")

    def close(self) -> None:
        if self.handle:
            llama.llama_model_free(self.handle)
            self.handle = None


_KV_TYPES = {"f16": llama.GGML_TYPE_F16, "q8_0": llama.GGML_TYPE_Q8_0}


@dataclass(frozen=True, slots=True)
class ContextSettings:
    slots: int  # sequences decoded at once, each with its own part of the KV cache
    slot_tokens: int  # KV cache cells of each slot
    batch_tokens: int  # the most tokens one decode call takes
    threads: int
    kv_type: str = "f16"  # what the cache holds keys and values in: f16 or q8_0


class Context:
    """A llama.cpp context: the KV cache and the work buffers decoding runs in.

    The cache is split into one stream per slot, as llama.cpp's own server splits it: a
    sequence's cells are its own, in order, whatever the other slots hold, so the same
    job computes the same numbers alone or in a batch.
    """

    def __init__(self, model: Model, settings: ContextSettings) -> None:
        params = llama.llama_context_default_params()
        params.n_seq_max = settings.slots
        params.n_ctx = settings.slot_tokens * settings.slots
        params.kv_unified = False
        # Flash attention's one-query-at-a-time kernel skips other streams' cells: on.
        params.flash_attn_type = llama.LLAMA_FLASH_ATTN_TYPE_ENABLED
        params.n_batch = params.n_ubatch = settings.batch_tokens
        params.n_outputs_max = settings.slots  # one row of logits per sequence a call
        params.n_threads = params.n_threads_batch = settings.threads
        params.no_perf = True
        params.type_k = params.type_v = _KV_TYPES[settings.kv_type]
        mapped = anonymous_memory()
        handle = llama.llama_init_from_model(model.handle, params)
        # The cache is cleared whole; its zero pages come back as jobs write their cells.
        self.given_back = give_back_zero_pages(mapped) if handle else 0
        if not handle:
            raise ModelUnavailable(
                f"llama.cpp could not make a KV cache of {settings.slots} x "
                f"{settings.slot_tokens} tokens for {model.description} (out of memory? "
                "RBEE_KV_CACHE sets its size)"
            )
        self.handle = handle
        self.threads = settings.threads
        self.kv_type = settings.kv_type
        self.memory = llama.llama_get_memory(handle)
        self.batch = llama.llama_batch_init(settings.batch_tokens, 0, 1)
        self.rows = 0

    # -- one batch ----------------------------------------------------------------------

    def clear_batch(self) -> None:
        self.rows = 0

    def add(self, token: int, position: int, seq_id: int, logits: bool) -> int:
        """Put one token of one sequence in the next batch; its row in the batch."""
        row = self.rows
        batch = self.batch
        batch.token[row] = token
        batch.pos[row] = position
        batch.n_seq_id[row] = 1
        batch.seq_id[row][0] = seq_id
        batch.logits[row] = logits
        self.rows = row + 1
        return row

    def decode(self) -> None:
        self.batch.n_tokens = self.rows
        code = llama.llama_decode(self.handle, self.batch)
        if code != 0:
            why = "no room in the KV cache" if code == 1 else f"error {code}"
            raise RuntimeError(f"llama.cpp could not decode a batch of {self.rows}: {why}")

    def forget(self, seq_id: int, keep: int = 0) -> None:
        """Drop a sequence's cells from the KV cache, but for its first ``keep`` tokens."""
        llama.llama_memory_seq_rm(self.memory, seq_id, keep, -1)

    def forget_all(self) -> None:
        llama.llama_memory_clear(self.memory, True)

    def close(self) -> None:
        if self.handle:
            llama.llama_batch_free(self.batch)
            llama.llama_free(self.handle)
            self.handle = None
