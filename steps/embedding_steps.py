"""Steps for embeddings through the official openai client and plain HTTP."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import numpy as np
from behave import then, when

from steps.support.jobs import DEFAULT_MODEL, assert_listed, auth


@when("I embed these sentences with the OpenAI client:")
def step_embed(context: Any) -> None:
    context.sentences = [row["sentence"] for row in context.table]
    response = context.openai.embeddings.with_raw_response.create(
        model=DEFAULT_MODEL, input=context.sentences
    )
    context.embedding_job = response.headers["X-Rbee-Job-Id"]
    context.embedded = response.parse()
    context.vectors = np.array([d.embedding for d in context.embedded.data])


@then("I get {n:d} unit vectors of {dims:d} dimensions")
def step_unit_vectors(context: Any, n: int, dims: int) -> None:
    assert context.vectors.shape == (n, dims), context.vectors.shape
    assert [d.index for d in context.embedded.data] == list(range(n))
    assert np.allclose(np.linalg.norm(context.vectors, axis=1), 1.0, atol=1e-4)


@then("the first two are closer to each other than either is to the third")
def step_closer(context: Any) -> None:
    v = context.vectors
    similar, unrelated = float(v[0] @ v[1]), max(float(v[0] @ v[2]), float(v[1] @ v[2]))
    assert similar > unrelated + 0.1, (similar, unrelated)


@then("the usage counts the sentences' tokens")
def step_usage(context: Any) -> None:
    usage = context.embedded.usage
    words = sum(len(s.split()) for s in context.sentences)
    assert usage.prompt_tokens >= words and usage.total_tokens == usage.prompt_tokens, usage


@then('the embedding job shows in rbee-keeper jobs list as "{state}"')
def step_listed(context: Any, state: str) -> None:
    assert_listed(context, context.embedding_job, state)


def _post(context: Any, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{context.queen_url}/v1/embeddings",
        json={"model": DEFAULT_MODEL, **body},
        headers=auth(context),
        timeout=300,
    )


@when('I post "{text}" to /v1/embeddings as float and as base64')
def step_both_encodings(context: Any, text: str) -> None:
    floats = _post(context, {"input": text, "encoding_format": "float"})
    packed = _post(context, {"input": text, "encoding_format": "base64"})
    assert floats.status_code == packed.status_code == 200, (floats.text, packed.text)
    context.as_floats = np.array(floats.json()["data"][0]["embedding"], dtype=np.float32)
    raw = base64.b64decode(packed.json()["data"][0]["embedding"])
    context.as_base64 = np.frombuffer(raw, dtype="<f4")


@then("both answers hold the same vector")
def step_same_vector(context: Any) -> None:
    assert context.as_floats.shape == context.as_base64.shape == (576,)
    assert np.allclose(context.as_floats, context.as_base64, atol=1e-6)


@when('I post "{text}" to /v1/embeddings asking for {n:d} dimensions')
def step_dimensions(context: Any, text: str, n: int) -> None:
    context.response = _post(context, {"input": text, "dimensions": n})
