"""The ``markov`` backend: loads ``markov-text`` models, generates one word per token.

``MarkovBackend`` implements ``rbee_core.backends.Backend`` and ``MarkovModel`` implements
``rbee_core.backends.LoadedModel``. Both are plain blocking code: the worker runs them in a
thread of its own.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator

from rbee_core.backends import Chunk, GenerationParams
from rbee_core.errors import ModelUnavailable
from rbee_core.models import LocalModel
from rbee_core.narration import Narrate
from rbee_core.stops import StopMatcher

from rbee_markov.chain import MarkovChain, words

__all__ = ["FORMAT", "MarkovBackend", "MarkovModel"]

FORMAT = "markov-text"
"""The ``LocalModel.format`` of a model this backend loads: one UTF-8 text file."""


class MarkovModel:
    """A Markov chain in memory, ready to continue prompts. Always on the CPU."""

    def __init__(self, chain: MarkovChain) -> None:
        self.chain = chain

    @property
    def device(self) -> str:
        return "cpu"

    def generate(
        self, prompt: str, params: GenerationParams, cancelled: Callable[[], bool]
    ) -> Iterator[Chunk]:
        """Continue ``prompt`` word by word; each chunk is ``" " + word``.

        The chain starts from the prompt's last words (as many as it has seen together).
        ``params.raw`` changes nothing: there is no chat template to apply.
        """
        history = words(prompt)
        prompt_tokens = len(history)
        rng = random.Random(params.seed)  # seed None: seeded from the OS, not reproducible
        stops = StopMatcher(params.stop)
        generated = 0
        finish = "length"
        while generated < params.max_tokens:
            if cancelled():
                finish = "cancelled"
                break
            word = self.chain.choose(
                history, rng, params.temperature, top_k=params.top_k, top_p=params.top_p
            )
            history.append(word)
            generated += 1
            text, hit = stops.feed(" " + word)
            if text:
                yield Chunk(text=text)
            if hit:
                finish = "stop"
                break
        yield from stops.closing_chunks(finish, prompt_tokens, generated)


class MarkovBackend:
    """Builds a word-level Markov chain (order 2 by default) from a text corpus."""

    name = "markov"
    formats = (FORMAT,)

    def __init__(self, order: int = 2) -> None:
        self.order = order

    def load(self, model: LocalModel, device: str, narrate: Narrate) -> MarkovModel:
        if model.format != FORMAT:
            raise ModelUnavailable(
                f"the markov backend cannot load {model.format!r} models ({model.name})"
            )
        if device.startswith("cuda"):
            # The default scheduler prefers GPUs; a Markov chain has no use for one.
            narrate("device_fallback", f"the markov backend runs on the CPU, not {device}")
        elif device not in ("auto", "cpu"):
            raise ModelUnavailable(f"the markov backend runs on the CPU; unknown device {device!r}")
        narrate("load_start", f"building an order-{self.order} Markov chain for {model.name}")
        started = time.monotonic()
        try:
            corpus = words(model.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelUnavailable(f"cannot read the corpus of {model.name}: {exc}") from exc
        if len(corpus) <= self.order:
            raise ModelUnavailable(
                f"the corpus of {model.name} has {len(corpus)} words; "
                f"an order-{self.order} chain needs more than {self.order}"
            )
        chain = MarkovChain(corpus, self.order)
        narrate(
            "load_done",
            f"{model.name} loaded on cpu in {time.monotonic() - started:.2f} s "
            f"({chain.corpus_words} words, {chain.contexts} contexts)",
        )
        return MarkovModel(chain)
