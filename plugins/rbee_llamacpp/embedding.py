"""Embeddings on llama.cpp: a second, small context with mean pooling, beside the one that
generates.

Its own context, not the generating one switched into embedding mode: the engine thread
decodes jobs in that one at every step, and switching would stall or corrupt the batch. This
one holds ``EMBED_TOKENS`` cells (a few MB for small models), is made on the first request,
and packs several inputs into one decode call, each its own sequence; a lock serialises
callers (one call already fills the CPU).
"""

from __future__ import annotations

import threading
from typing import Any

import llama_cpp as llama
import numpy as np

from rbee_core.backends import Embeddings
from rbee_core.errors import InvalidRequest, ModelUnavailable
from rbee_llamacpp.library import Model

__all__ = ["EMBED_SEQUENCES", "EMBED_TOKENS", "Embedder"]

EMBED_TOKENS = 512  # the most tokens of one input, and of one decode call
EMBED_SEQUENCES = 16  # inputs in one decode call


class Embedder:
    def __init__(self, model: Model, threads: int) -> None:
        self._model = model
        self.dimensions = int(llama.llama_model_n_embd(model.handle))
        params = llama.llama_context_default_params()
        params.embeddings = True
        params.pooling_type = llama.LLAMA_POOLING_TYPE_MEAN
        params.n_ctx = params.n_batch = params.n_ubatch = EMBED_TOKENS
        params.n_seq_max = EMBED_SEQUENCES
        params.kv_unified = True  # the sequences of one call share the cells
        params.n_threads = params.n_threads_batch = threads
        params.no_perf = True
        handle = llama.llama_init_from_model(model.handle, params)
        if not handle:
            raise ModelUnavailable(f"llama.cpp could not make an embedding context for {model}")
        self._handle: Any = handle
        self._memory = llama.llama_get_memory(handle)
        self._batch = llama.llama_batch_init(EMBED_TOKENS, 0, 1)
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> Embeddings:
        encoded = [self._model.vocab.tokenize(text, add_special=True) for text in texts]
        for i, ids in enumerate(encoded):
            if len(ids) > EMBED_TOKENS:
                raise InvalidRequest(
                    f"input[{i}] is {len(ids)} tokens; this model embeds at most "
                    f"{EMBED_TOKENS} tokens of one input",
                    field="input",
                )
        vectors: list[np.ndarray[Any, np.dtype[np.float32]]] = []
        with self._lock:
            for group in _groups(encoded):
                vectors += self._decode(group)
        return Embeddings(
            np.stack(vectors) if vectors else np.zeros((0, self.dimensions), np.float32),
            sum(len(ids) for ids in encoded),
        )

    def _decode(self, group: list[list[int]]) -> list[np.ndarray[Any, np.dtype[np.float32]]]:
        llama.llama_memory_clear(self._memory, True)
        batch = self._batch
        row = 0
        for seq, ids in enumerate(group):
            for position, token in enumerate(ids):
                batch.token[row] = token
                batch.pos[row] = position
                batch.n_seq_id[row] = 1
                batch.seq_id[row][0] = seq
                batch.logits[row] = True  # pooled: every token counts
                row += 1
        batch.n_tokens = row
        code = llama.llama_decode(self._handle, batch)
        if code != 0:
            raise RuntimeError(f"llama.cpp could not embed a batch of {row} tokens: {code}")
        out = []
        for seq in range(len(group)):
            pointer = llama.llama_get_embeddings_seq(self._handle, seq)
            vector = np.ctypeslib.as_array(pointer, (self.dimensions,)).astype(np.float32)
            out.append(vector / max(float(np.linalg.norm(vector)), 1e-12))
        return out

    def close(self) -> None:
        if self._handle:
            llama.llama_batch_free(self._batch)
            llama.llama_free(self._handle)
            self._handle = None


def _groups(encoded: list[list[int]]) -> list[list[list[int]]]:
    """Inputs packed in order into decode calls of at most EMBED_TOKENS tokens and
    EMBED_SEQUENCES inputs."""
    groups: list[list[list[int]]] = [[]]
    used = 0
    for ids in encoded:
        if groups[-1] and (used + len(ids) > EMBED_TOKENS or len(groups[-1]) == EMBED_SEQUENCES):
            groups.append([])
            used = 0
        groups[-1].append(ids)
        used += len(ids)
    return [g for g in groups if g]
