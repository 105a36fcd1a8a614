"""The ``markov:`` model source: text corpora shipped inside this package.

``markov:NAME`` is the corpus ``corpora/NAME.txt``; the catalog alias ``markov-demo`` stands
for ``markov:demo``. Implements ``rbee_core.models.ModelSource``.
"""

from __future__ import annotations

from pathlib import Path

from rbee_core.errors import ModelUnavailable, UnknownModel
from rbee_core.models import LocalModel
from rbee_core.narration import Narrate

from rbee_markov.backend import FORMAT

__all__ = ["ALIASES", "CORPORA", "CORPUS_DIR", "MarkovSource"]

CORPUS_DIR = Path(__file__).parent / "corpora"
"""Where the bundled corpora are installed (package data, see pyproject.toml)."""

CORPORA = {"demo": "demo.txt"}
"""Corpus name -> file in ``CORPUS_DIR``."""

ALIASES = {"markov-demo": "markov:demo"}
"""Catalog names this source contributes."""


class MarkovSource:
    """References ``markov:NAME``. Nothing to download: the corpora are package data."""

    scheme = "markov"

    def aliases(self) -> dict[str, str]:
        return dict(ALIASES)

    def _corpus(self, ref: str) -> str:
        name = ref.removeprefix(f"{self.scheme}:")
        if name not in CORPORA:
            raise UnknownModel(
                ref,
                sorted(ALIASES) + [f"{self.scheme}:{n}" for n in sorted(CORPORA)],
                reason=f"no markov corpus named {name!r}",
            )
        return name

    def check(self, ref: str) -> None:
        self._corpus(ref)

    def provision(self, ref: str, narrate: Narrate) -> LocalModel:
        corpus = self._corpus(ref)
        path = CORPUS_DIR / CORPORA[corpus]
        if not path.is_file():
            raise ModelUnavailable(f"the corpus file {path} is missing; reinstall rbee-markov")
        name = next((alias for alias, r in ALIASES.items() if r == ref), ref)
        narrate("model_found", f"model {name} is on this machine ({path.name}, bundled corpus)")
        return LocalModel(name=name, path=path, format=FORMAT)
