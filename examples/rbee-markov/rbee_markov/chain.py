"""A word-level Markov chain: which word follows the last few words, and how often.

Words are whitespace-separated pieces of the corpus, emitted as written (``"hive,"``).
Contexts are matched on a normalised form (lower case, surrounding punctuation removed), so a
prompt like ``"The Queen"`` finds the corpus's ``"the queen"``. The corpus is treated as a
ring (its end continues at its start), so every context has at least one next word.
"""

from __future__ import annotations

import math
import random
import string
from collections import Counter
from collections.abc import Sequence

__all__ = ["MarkovChain", "normalise", "words"]

Successors = tuple[tuple[str, int], ...]
"""Next words with their counts, most frequent first (ties in a fixed, corpus-given order)."""


def words(text: str) -> list[str]:
    """The whitespace-separated words of ``text``."""
    return text.split()


def normalise(word: str) -> str:
    """The form a word is matched by: lower case, without surrounding punctuation."""
    return word.strip(string.punctuation + "\u201c\u201d\u2018\u2019").lower()


class MarkovChain:
    """Next-word counts for every context of up to ``order`` words, built from a corpus.

    To choose a word it uses the longest context it has seen (``order`` words, then fewer),
    down to plain word frequencies, so it can always continue any text.
    """

    def __init__(self, corpus: Sequence[str], order: int = 2) -> None:
        if order < 1:
            raise ValueError(f"order must be at least 1, got {order}")
        if len(corpus) <= order:
            raise ValueError(f"a chain of order {order} needs more than {order} words")
        self.order = order
        self.corpus_words = len(corpus)
        keys = [normalise(w) for w in corpus]
        counts: dict[tuple[str, ...], Counter[str]] = {}
        ring = len(corpus)
        for i in range(ring):
            nxt = corpus[(i + order) % ring]
            for n in range(order + 1):  # contexts of length 0 .. order ending before nxt
                start = i + order - n
                context = tuple(keys[j % ring] for j in range(start, i + order))
                counts.setdefault(context, Counter())[nxt] += 1
        # Counter.most_common keeps first-seen order among equal counts: deterministic ties.
        self._next: dict[tuple[str, ...], Successors] = {
            context: tuple(counter.most_common()) for context, counter in counts.items()
        }

    @property
    def contexts(self) -> int:
        """How many distinct contexts (of every length) the chain knows."""
        return len(self._next)

    def successors(self, history: Sequence[str]) -> Successors:
        """Next words after ``history`` (words as written), from the longest known context."""
        keys = [normalise(w) for w in history[-self.order :]]
        for n in range(len(keys), -1, -1):
            found = self._next.get(tuple(keys[len(keys) - n :]))
            if found:
                return found
        raise AssertionError("the empty context always has successors")  # pragma: no cover

    def choose(
        self,
        history: Sequence[str],
        rng: random.Random,
        temperature: float,
        top_k: int = 0,
        top_p: float = 1.0,
    ) -> str:
        """The next word: the most frequent if ``temperature == 0``, else a weighted draw.

        Weights are ``count ** (1 / temperature)``, then cut to the ``top_k`` likeliest
        (``0``: no cut) and to the smallest set whose probability reaches ``top_p``.
        """
        options = self.successors(history)
        if temperature <= 0 or len(options) == 1:
            return options[0][0]
        # Relative to the top count, so a tiny temperature cannot overflow.
        top = math.log(options[0][1])
        weights = [math.exp((math.log(count) - top) / temperature) for _, count in options]
        if top_k > 0:
            weights = weights[:top_k]
        if top_p < 1.0:
            total, kept, running = sum(weights), 0, 0.0
            while kept < len(weights) and running < top_p * total:
                running += weights[kept]
                kept += 1
            weights = weights[: max(kept, 1)]
        candidates = [word for word, _ in options[: len(weights)]]
        return rng.choices(candidates, weights=weights)[0]
