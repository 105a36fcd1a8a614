"""Model references and the sources that provide model files.

A reference is either a catalog alias (``smollm2-135m``) or ``SCHEME:REST`` (``file:/path``,
``pypi:PACKAGE/FILE``, ...). A ``ModelSource`` plugin handles one scheme: it checks
references cheaply (the queen does this before accepting a job) and provisions files onto
the machine (the worker does this before loading).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from rbee_core.errors import InvalidRequest, UnknownModel
from rbee_core.narration import Narrate

__all__ = ["LocalModel", "ModelCatalog", "ModelSource", "normalize_reference"]


@dataclass(frozen=True, slots=True)
class LocalModel:
    """Model files on this machine. ``format`` is ``"gguf"``, ``"safetensors"``, or a
    backend-specific name; ``path`` is a file or a folder."""

    name: str
    path: Path
    format: str


@runtime_checkable
class ModelSource(Protocol):
    """Where model files come from, for one reference scheme."""

    @property
    def scheme(self) -> str:
        """The prefix before ``:`` in references this source handles."""
        ...

    def aliases(self) -> dict[str, str]:
        """Catalog names this source provides, mapped to their full references."""
        ...

    def check(self, ref: str) -> None:
        """Raise ``UnknownModel`` or ``InvalidRequest`` if ``ref`` can't be provisioned.

        Must be fast and must not download anything.
        """
        ...

    def provision(self, ref: str, narrate: Narrate) -> LocalModel:
        """Put the model's files on this machine (if needed) and say where they are."""
        ...


def normalize_reference(ref: str) -> str:
    """``ref`` with its scheme in lower case (``HF:org/name`` is ``hf:org/name``), as URL
    schemes are case-insensitive; the rest is left alone (a path or a repository name may
    well be case-sensitive). Sources and the catalog then see one spelling per model."""
    scheme, sep, rest = ref.partition(":")
    return f"{scheme.lower()}:{rest}" if sep else ref


class ModelCatalog:
    """Resolves names to (reference, source) over every registered source."""

    def __init__(self, sources: Iterable[ModelSource]) -> None:
        self.sources: dict[str, ModelSource] = {s.scheme: s for s in sources}
        self.aliases: dict[str, str] = {}
        for source in self.sources.values():
            self.aliases.update(source.aliases())
        self._alias_of = {ref: alias for alias, ref in self.aliases.items()}

    def known(self) -> list[str]:
        return sorted(self.aliases)

    def name_of(self, model: str) -> str:
        """The catalog's name for what a user typed: its alias, else the full reference
        (its scheme in lower case). No I/O and no check that it resolves (see ``resolve``)."""
        ref = normalize_reference(self.aliases.get(model, model))
        return self._alias_of.get(ref, ref)

    def resolve(self, name: str) -> tuple[str, ModelSource]:
        """The full reference and its source; ``UnknownModel``/``InvalidRequest`` if none."""
        ref = normalize_reference(self.aliases.get(name, name))
        scheme, sep, rest = ref.partition(":")
        if not sep:
            raise UnknownModel(name, self.known())
        source = self.sources.get(scheme)
        if source is None:
            schemes = ", ".join(f"{s}:" for s in sorted(self.sources))
            raise InvalidRequest(
                f"unknown model reference scheme {scheme + ':'!r} in {name!r}; "
                f"use a catalog name ({', '.join(self.known())}) or one of: {schemes}",
                field="model",
            )
        if not rest:
            raise InvalidRequest(f"model reference {name!r} is empty after {scheme}:", "model")
        source.check(ref)
        return ref, source

    def provision(self, name: str, narrate: Narrate) -> LocalModel:
        ref, source = self.resolve(name)
        return source.provision(ref, narrate)
