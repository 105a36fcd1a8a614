"""Model names as Ollama users type them, onto rbee's catalog, and back.

Ollama names a model ``name:tag`` (``smollm2:135m``; ``name`` alone means ``name:latest``);
rbee's catalog names it by an alias (``smollm2-135m``) or a reference (``pypi:...``,
``hf:org/repo``, ``https://...``, ``file:/path``). The mapping:

- a name rbee knows as it is (an alias, or any reference) stays as it is;
- ``name:latest`` is ``name``, and ``name:tag`` is ``name-tag``, when that is an alias;
- any other ``name:tag`` (its ``name`` no reference scheme rbee knows) is rbee's
  ``UnknownModel`` (404, naming it and the catalog's names), as Ollama answers a model it
  does not have, where rbee would take ``name:`` for an unknown scheme (a 400);
- anything else (a reference) stays as given, for rbee to resolve or refuse itself.

Back, for ``/api/tags`` and ``/api/ps``: an alias ``head-tail`` is ``head:tail``, and one
without a ``-`` or whose ``head`` is a reference scheme is ``alias:latest``; the mapping
above takes either back to the alias. A reference is listed as it is.
"""

from __future__ import annotations

from rbee_core.errors import UnknownModel
from rbee_core.models import ModelCatalog

__all__ = ["to_ollama", "to_rbee"]


def to_rbee(name: str, catalog: ModelCatalog) -> str:
    """The catalog's name for an Ollama model name (see the module's doc); ``UnknownModel``
    for an Ollama-style name that names none."""
    name = name.strip()
    if name in catalog.aliases:
        return name
    base, sep, tag = name.rpartition(":")
    # A reference's scheme ("hf:", "pypi:", "https://...") is no tag.
    if not sep or not base or "/" in tag or base.lower() in catalog.sources:
        return name
    alias = base if tag == "latest" else f"{base}-{tag}"
    if alias not in catalog.aliases:
        raise UnknownModel(name, catalog.known())
    return alias


def to_ollama(name: str, catalog: ModelCatalog) -> str:
    """How ``/api/tags`` lists a catalog name: a ``name:tag`` that ``to_rbee`` maps back."""
    if name not in catalog.aliases:
        return name  # a reference: sent back as it is, it resolves as it is
    head, sep, tail = name.rpartition("-")
    # "markov-demo" is not "markov:demo": that is a reference of rbee's markov: source.
    if sep and head and tail and head.lower() not in catalog.sources:
        return f"{head}:{tail}"
    return f"{name}:latest"
