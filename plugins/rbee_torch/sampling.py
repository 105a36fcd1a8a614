"""Per-job token choice: greedy, or sampled with the job's own warpers and random generator.

Each job owns its ``torch.Generator``, so a seeded job draws the same tokens whichever other
jobs share its batch. A job with a JSON Schema also owns a ``Constraint``: its row of logits
is masked to the tokens that keep the output valid before any choice is made.
"""

from __future__ import annotations

import torch
from transformers import (
    LogitsProcessorList,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from rbee_core.backends import GenerationParams
from rbee_structured.constraint import Constraint

__all__ = ["Sampler"]

_NO_IDS = torch.empty((1, 0), dtype=torch.long)


class Sampler:
    """Picks the next token of one sequence from its row of logits (a
    ``rbee_core.batching.TokenSampler`` of ``[1, vocab]`` tensors)."""

    def __init__(
        self, params: GenerationParams, device: str, constraint: Constraint | None = None
    ) -> None:
        self._argmax = params.temperature == 0
        # The batch takes one argmax over all its greedy rows; a constrained row is masked
        # first, so it picks its own.
        self.greedy = self._argmax and constraint is None
        self._constraint = constraint
        self._temperature = params.temperature
        self._warpers = LogitsProcessorList()
        if params.top_k > 0:
            self._warpers.append(TopKLogitsWarper(params.top_k))
        if params.top_p < 1.0:
            self._warpers.append(TopPLogitsWarper(params.top_p))
        self._generator = torch.Generator(device=device)
        if params.seed is not None:
            self._generator.manual_seed(params.seed)
        else:
            self._generator.seed()

    def sample(self, logits: torch.Tensor) -> int:
        """``logits``: shape ``[1, vocab]``."""
        if self._constraint is None:
            return self._choose(logits)
        token = self._choose(self._masked(logits, self._constraint))
        self._constraint.accept(token)
        return token

    def close(self) -> None:
        """Nothing to free: its generator and warpers are plain torch objects."""

    def _masked(self, logits: torch.Tensor, constraint: Constraint) -> torch.Tensor:
        allowed = torch.from_numpy(constraint.allowed()).to(logits.device)
        masked = logits.float().clone()  # the batch's logits stay as the model gave them
        masked[:, : allowed.shape[0]].masked_fill_(~allowed, float("-inf"))
        masked[:, allowed.shape[0] :] = float("-inf")  # padding ids past the vocabulary
        return masked

    def _choose(self, logits: torch.Tensor) -> int:
        if self._argmax:
            return int(logits.argmax(dim=-1).item())
        scores = logits.float() / self._temperature
        if self._warpers:
            # Warpers ignore input_ids, so an empty tensor stands in for it.
            scores = self._warpers(_NO_IDS, scores)  # type: ignore[arg-type]
        # Inverse-CDF sampling: one random number per token, a tenth of multinomial's cost
        # on a large vocabulary, and it is paid once per sequence on every decode step.
        cdf = torch.softmax(scores, dim=-1).cumsum(dim=-1)
        # 1 - rand is in (0, 1]: never 0, which would pick token 0 even at probability 0.
        u = (1 - torch.rand((1, 1), generator=self._generator, device=cdf.device)) * cdf[:, -1:]
        return min(int(torch.searchsorted(cdf, u).item()), cdf.shape[-1] - 1)
