"""The worker uses a model's optional capabilities (rbee_core.backends' Protocols) when it
has them, and refuses what needs one it lacks, naming it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from rbee_core.backends import (
    BatchingModel,
    Chunk,
    ClosableModel,
    EmbeddingModel,
    Embeddings,
    GenerationParams,
    LoadedModel,
    QuantizedModel,
    StructuredModel,
)
from rbee_core.errors import InvalidRequest
from rbee_worker.runner import Runner

SCHEMA = GenerationParams(max_tokens=1, json_schema='{"type": "object"}')


class Plain:
    """A model with no optional capability."""

    @property
    def device(self) -> str:
        return "cpu"

    def generate(
        self, prompt: str, params: GenerationParams, cancelled: Callable[[], bool]
    ) -> Iterator[Chunk]:
        yield Chunk(text="{}", finish_reason="stop")


class Full(Plain):
    """A model with every optional capability."""

    max_batch = 3
    quantization = "Q4_1"
    structured = True

    def __init__(self) -> None:
        self.closed = 0

    def embed(self, texts: list[str]) -> Embeddings:
        return Embeddings(np.ones((len(texts), 2), np.float32), len(texts))

    def close(self) -> None:
        self.closed += 1


class Unconstrained(Full):
    structured = False  # it has the member, and says no


def answer(runner: Runner, params: GenerationParams) -> str:
    async def run() -> str:
        return "".join([c.text async for c in runner.generate("p", params)])

    return asyncio.run(run())


def test_the_protocols_recognise_what_a_model_has() -> None:
    full = Full()
    assert isinstance(Plain(), LoadedModel) and isinstance(full, LoadedModel)
    for capability in (BatchingModel, QuantizedModel, StructuredModel, EmbeddingModel):
        assert isinstance(full, capability) and not isinstance(Plain(), capability)
    assert isinstance(full, ClosableModel) and not isinstance(Plain(), ClosableModel)


def test_a_model_without_capabilities_gets_one_slot_and_is_refused_what_needs_them() -> None:
    runner = Runner(Plain())
    assert runner.slots == 1 and runner.quantization == ""
    with pytest.raises(InvalidRequest, match=r"\(Plain\) cannot constrain") as schema:
        answer(runner, SCHEMA)
    assert schema.value.field == "response_format"
    with pytest.raises(InvalidRequest, match=r"\(Plain\) does not compute embeddings") as embed:
        asyncio.run(runner.embed(["a"]))
    assert embed.value.field == "embed"
    runner.close()  # nothing to close: no error


def test_a_model_with_capabilities_has_them_used() -> None:
    model = Full()
    runner = Runner(model)
    assert runner.slots == 3 and runner.quantization == "Q4_1"
    assert answer(runner, SCHEMA) == "{}"
    assert asyncio.run(runner.embed(["a", "b"])).vectors.shape == (2, 2)
    runner.close()
    assert model.closed == 1


def test_a_model_that_says_it_cannot_constrain_is_refused() -> None:
    runner = Runner(Unconstrained())
    with pytest.raises(InvalidRequest, match=r"\(Unconstrained\) cannot constrain"):
        answer(runner, SCHEMA)
    assert answer(runner, GenerationParams(max_tokens=1)) == "{}"  # free text is fine
    runner.close()
