"""LlamaCppModel: a GGUF model loaded in llama.cpp; its jobs are decoded together by a
``LlamaEngine``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from rbee_core.backends import Chunk, Embeddings, GenerationParams
from rbee_core.batching import text_chunks
from rbee_core.chat_tools import chat_input, template_knows_tools
from rbee_llamacpp.embedding import Embedder
from rbee_llamacpp.engine import LlamaEngine
from rbee_llamacpp.library import Context, Model, Pieces
from rbee_llamacpp.sampling import Sampler
from rbee_structured.constraint import Constraint
from rbee_structured.grammar import compile_schema

__all__ = ["LlamaCppModel"]


class LlamaCppModel:
    """A model, its context, and the engine that decodes its jobs."""

    structured = True  # honours GenerationParams.json_schema

    def __init__(
        self, model: Model, context: Context, engine: LlamaEngine, quantization: str
    ) -> None:
        self._model = model
        self._context = context
        self.engine = engine
        self.quantization = quantization
        vocab = model.vocab
        template = vocab.chat_template()
        # llama-cpp-python's renderer of GGUF chat templates, as transformers renders them.
        self._chat = Jinja2ChatFormatter(template, vocab.eos, vocab.bos) if template else None
        self.knows_tools = bool(template) and template_knows_tools(template or "")
        self._guide: Any = None  # the vocabulary as llguidance reads it, made on first use
        self._guide_lock = threading.Lock()
        self._embedder: Embedder | None = None  # made on the first embedding request

    @property
    def device(self) -> str:
        return "cpu"

    @property
    def max_batch(self) -> int:
        """How many generations run at once; the worker admits this many concurrent jobs."""
        return self.engine.max_batch

    def embed(self, texts: list[str]) -> Embeddings:
        with self._guide_lock:
            if self._embedder is None:
                self._embedder = Embedder(self._model, self._context.threads)
        return self._embedder.embed(texts)

    def close(self) -> None:
        if self._embedder is not None:
            self._embedder.close()
        self.engine.close()
        self._context.close()
        self._model.close()

    def encode(
        self,
        prompt: str,
        raw: bool,
        messages: tuple[tuple[str, str], ...] = (),
        tools: tuple[dict[str, Any], ...] = (),
    ) -> list[int]:
        """Token ids of the prompt (or conversation), in the chat template unless ``raw``;
        ``tools`` through the template when it knows tools, else in the system message."""
        vocab = self._model.vocab
        if raw or self._chat is None:
            return vocab.tokenize(prompt, add_special=True)
        conversation, tool_list = chat_input(prompt, messages, tools, self.knows_tools)
        rendered = self._chat(messages=conversation, tools=tool_list)  # type: ignore[arg-type]
        return vocab.tokenize(rendered.prompt, add_special=False)  # the template has its BOS

    def _guide_tokenizer(self) -> Any:
        with self._guide_lock:
            if self._guide is None:
                self._guide = self._model.vocab.guide()
            return self._guide

    def generate(
        self, prompt: str, params: GenerationParams, cancelled: Callable[[], bool]
    ) -> Iterator[Chunk]:
        ids = self.encode(prompt, params.raw, params.messages, params.tool_functions())
        constraint = None
        if params.json_schema is not None:
            grammar = compile_schema(params.json_schema)
            constraint = Constraint(self._guide_tokenizer(), grammar, self._model.vocab.size)
        sampler = Sampler(params, self._context.handle, constraint)
        seq = self.engine.submit(ids, params.max_tokens, sampler, cancelled)
        pieces = Pieces(self._model.vocab)
        yield from text_chunks(seq, pieces.push, params.stop, pieces.flush)
