"""One job's constraint: which tokens may come next, and the token that came."""

from __future__ import annotations

from typing import Any

import numpy as np

from rbee_core.errors import RbeeError

__all__ = ["Constraint"]


class Constraint:
    """A llguidance matcher for one generation. ``tokenizer`` is the model's
    ``LLTokenizer`` (built once per model: it takes about a second), ``grammar`` from
    ``rbee_structured.grammar.compile_schema``.

    Before the engine samples the job's row it asks ``allowed``, and masks the rest of the
    row out; then it tells ``accept`` the token it picked.
    """

    def __init__(self, tokenizer: Any, grammar: str, vocab: int) -> None:
        from llguidance import LLMatcher

        self.matcher = LLMatcher(tokenizer, grammar)
        self._vocab = vocab
        # llguidance's bitmask: bit i of the words is token i (little-endian words).
        self._bits = np.zeros((vocab + 31) // 32, dtype=np.int32)
        self._check()

    def allowed(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """One flag per token id: may it come next?

        Unpacked with numpy: llguidance's own torch helper is a ``torch.compile`` kernel,
        seconds to compile in every worker (and a C compiler at run time) for what numpy
        does in tens of microseconds.
        """
        self.matcher.unsafe_compute_mask_ptr(self._bits.ctypes.data, self._bits.nbytes)
        self._check()
        flags = np.unpackbits(self._bits.view(np.uint8), bitorder="little")
        return flags[: self._vocab].astype(np.bool_)

    def accept(self, token: int) -> None:
        self.matcher.consume_token(token)
        self._check()

    def _check(self) -> None:
        if self.matcher.is_error():
            raise RbeeError(f"constrained decoding failed: {self.matcher.get_error()}")
