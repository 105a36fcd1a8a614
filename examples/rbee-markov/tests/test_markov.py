"""The markov backend and source against rbee's contracts, in-process (no daemons)."""

from __future__ import annotations

from typing import Any

import pytest
from rbee_core.backends import Backend, Chunk, GenerationParams, LoadedModel
from rbee_core.engine_options import EngineOptions
from rbee_core.errors import ModelUnavailable, UnknownModel
from rbee_core.models import LocalModel, ModelSource
from rbee_core.plugins import backend_for, create_plugin_manager, model_catalog

from rbee_markov.backend import MarkovBackend, MarkovModel
from rbee_markov.chain import MarkovChain, words
from rbee_markov.source import MarkovSource


def never() -> bool:
    return False


@pytest.fixture(scope="module")
def narrations() -> list[tuple[str, str]]:
    return []


@pytest.fixture(scope="module")
def model(narrations: list[tuple[str, str]]) -> MarkovModel:
    def narrate(action: str, message: str) -> None:
        narrations.append((action, message))

    local = MarkovSource().provision("markov:demo", narrate)
    return MarkovBackend().load(local, "auto", narrate)


def run(model: LoadedModel, prompt: str, **params: Any) -> list[Chunk]:
    return list(model.generate(prompt, GenerationParams(**params), never))


def text_of(chunks: list[Chunk]) -> str:
    return "".join(c.text for c in chunks)


def test_implements_the_contracts(model: MarkovModel) -> None:
    assert isinstance(MarkovBackend(), Backend)
    assert isinstance(MarkovSource(), ModelSource)
    assert isinstance(model, LoadedModel)
    assert model.device == "cpu"


def test_source_provisions_the_bundled_corpus(
    model: MarkovModel, narrations: list[tuple[str, str]]
) -> None:
    source = MarkovSource()
    assert source.aliases() == {"markov-demo": "markov:demo"}
    local = source.provision("markov:demo", lambda action, message: None)
    assert local == LocalModel("markov-demo", local.path, "markov-text")
    assert local.path.is_file() and local.path.name == "demo.txt"
    actions = [action for action, _ in narrations]
    assert actions[:3] == ["model_found", "load_start", "load_done"]


def test_unknown_corpus_is_an_unknown_model() -> None:
    with pytest.raises(UnknownModel) as info:
        MarkovSource().check("markov:nonesuch")
    assert "nonesuch" in info.value.message
    assert "markov-demo" in info.value.details["known"]


def test_load_refuses_other_formats() -> None:
    path = MarkovSource().provision("markov:demo", lambda action, message: None).path
    with pytest.raises(ModelUnavailable):
        MarkovBackend().load(LocalModel("x", path, "gguf"), "cpu", lambda action, message: None)


def test_temperature_zero_is_deterministic_and_follows_the_prompt(model: MarkovModel) -> None:
    first = run(model, "the queen", max_tokens=25, temperature=0)
    second = run(model, "the queen", max_tokens=25, temperature=0, seed=99)
    assert first == second
    # Each word is one chunk, with its leading space, then the final chunk.
    assert all(c.text.startswith(" ") and len(c.text.split()) == 1 for c in first[:-1])
    # Greedy: every word is the most frequent successor of the two words before it.
    chain = model.chain
    assert first[0].text == " " + chain.successors(["the", "queen"])[0][0]
    generated = words(text_of(first))
    for i, word in enumerate(generated):
        history = ["the", "queen", *generated[:i]]
        assert word == chain.successors(history)[0][0]


def test_seed_makes_sampling_reproducible(model: MarkovModel) -> None:
    a = run(model, "the keeper", max_tokens=40, temperature=1.5, seed=7)
    b = run(model, "the keeper", max_tokens=40, temperature=1.5, seed=7)
    others = {
        text_of(run(model, "the keeper", max_tokens=40, temperature=1.5, seed=s))
        for s in range(1, 6)
    }
    assert a == b
    assert len(others) > 1, "different seeds should give different text"


def test_max_tokens_ends_with_length(model: MarkovModel) -> None:
    chunks = run(model, "the queen", max_tokens=5, temperature=0.8, seed=1)
    assert len(chunks) == 6
    final = chunks[-1]
    assert final == Chunk("", finish_reason="length", prompt_tokens=2, completion_tokens=5)
    assert all(c.finish_reason is None for c in chunks[:-1])


def test_stop_string_ends_before_it(model: MarkovModel) -> None:
    full = text_of(run(model, "the queen", max_tokens=40, temperature=0))
    stop = " ".join(full.split()[3:5])  # two words from the middle: spans chunks
    chunks = run(model, "the queen", max_tokens=40, temperature=0, stop=(stop,))
    text = text_of(chunks)
    assert stop not in text
    assert full.startswith(text) and text == full[: full.index(stop)]
    final = chunks[-1]
    assert final.finish_reason == "stop" and final.completion_tokens == 5


def test_unseen_prompt_still_generates(model: MarkovModel) -> None:
    chunks = run(model, "Zebras quantum?", max_tokens=8, temperature=0)
    assert len(words(text_of(chunks))) == 8
    assert chunks[-1].prompt_tokens == 2


def test_cancel_is_checked_every_token(model: MarkovModel) -> None:
    calls = 0

    def cancelled() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3

    chunks = list(model.generate("the queen", GenerationParams(max_tokens=50), cancelled))
    assert [c.finish_reason for c in chunks] == [None, None, None, "cancelled"]
    assert chunks[-1].completion_tokens == 3 and calls == 4


def test_chain_backs_off_to_shorter_contexts() -> None:
    chain = MarkovChain(words("a b c a b d"), order=2)
    assert chain.successors(["a", "b"]) == (("c", 1), ("d", 1))
    assert chain.successors(["x", "d"]) == (("a", 1),)  # ring: after "d" comes "a"
    assert chain.successors(["x", "y"])[0] == ("a", 2)  # plain frequency


def test_rbee_finds_the_plugin_through_its_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RBEE_LOAD_PLUGINS", "markov")
    pm = create_plugin_manager()
    catalog = model_catalog(pm)
    assert "markov-demo" in catalog.known()
    local = catalog.provision("markov-demo", lambda action, message: None)
    assert backend_for(pm, local, "auto", EngineOptions()).name == "markov"
