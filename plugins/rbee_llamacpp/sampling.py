"""Each job's own sampler chain, with its own seed, so its answer does not depend on the
other jobs in the batch; and, for a job held to a JSON Schema, its own constraint, which
masks its row of logits before the chain sees them."""

from __future__ import annotations

import random
from typing import Any

import llama_cpp as llama
import numpy as np

from rbee_core.backends import GenerationParams
from rbee_structured.constraint import Constraint

__all__ = ["Sampler"]


class Sampler:
    """A llama.cpp sampler chain for one job: greedy, or temperature, top-k and top-p, then
    a draw from the job's own seeded generator (a random seed when it has none). A
    ``rbee_core.batching.TokenSampler`` of row indices of ``context``'s last batch.

    The order is the one OpenAI and transformers use: the temperature first, then top-k and
    top-p on the scaled distribution.
    """

    def __init__(
        self, params: GenerationParams, context: Any, constraint: Constraint | None = None
    ) -> None:
        self.greedy = params.temperature == 0
        self._context = context  # the llama_context handle whose logits it samples
        self._constraint = constraint
        chain = llama.llama_sampler_chain_init(llama.llama_sampler_chain_default_params())
        add = llama.llama_sampler_chain_add
        if self.greedy:
            add(chain, llama.llama_sampler_init_greedy())
        else:
            add(chain, llama.llama_sampler_init_temp(params.temperature))
            if params.top_k > 0:
                add(chain, llama.llama_sampler_init_top_k(params.top_k))
            if params.top_p < 1.0:
                add(chain, llama.llama_sampler_init_top_p(params.top_p, 1))
            seed = params.seed if params.seed is not None else random.getrandbits(63)
            # llama.cpp seeds are 32 bits, and 0xFFFFFFFF means "pick one at random".
            add(chain, llama.llama_sampler_init_dist(seed % 0xFFFFFFFF))
        self._chain: Any = chain

    def sample(self, row: int) -> int:
        """The next token from row ``row`` of the last batch's logits."""
        context = self._context
        if self._constraint is None:
            return int(llama.llama_sampler_sample(self._chain, context, row))
        allowed = self._constraint.allowed()
        # The row in llama.cpp's own buffer: masked in place, then the chain samples it.
        logits = np.ctypeslib.as_array(llama.llama_get_logits_ith(context, row), (len(allowed),))
        logits[~allowed] = -np.inf
        token = int(llama.llama_sampler_sample(self._chain, context, row))
        self._constraint.accept(token)
        return token

    def close(self) -> None:
        """Free the chain (once; again is a no-op)."""
        if self._chain:
            llama.llama_sampler_free(self._chain)
            self._chain = None
