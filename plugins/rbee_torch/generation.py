"""TorchModel: a loaded model; its generations are decoded together by a ``BatchEngine``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from rbee_core.backends import Chunk, Embeddings, GenerationParams
from rbee_core.batching import text_chunks
from rbee_core.chat_tools import chat_input, template_knows_tools
from rbee_core.errors import InvalidRequest
from rbee_structured.constraint import Constraint
from rbee_structured.grammar import compile_schema
from rbee_torch.batching import BatchEngine
from rbee_torch.detokenize import Detokenizer
from rbee_torch.sampling import Sampler

__all__ = ["TorchModel", "eos_ids"]


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """The tokens that end a generation: the model's generation config's and the
    tokenizer's end-of-sequence ids."""
    eos = model.generation_config.eos_token_id
    ids = list(eos) if isinstance(eos, list) else [eos]
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return {int(i) for i in ids if i is not None}


class TorchModel:
    """A causal LM and its tokenizer on one device, and the engine its backend built for
    it (``rbee_torch.backend.torch_model``)."""

    structured = True  # honours GenerationParams.json_schema

    def __init__(self, model: Any, tokenizer: Any, device: str, engine: BatchEngine) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self._device = device
        self.engine = engine
        self.eos_ids = engine.eos_ids
        template = tokenizer.chat_template
        self.knows_tools = isinstance(template, str) and template_knows_tools(template)
        # How the weights are held, as worker list shows it: bf16, fp32...
        names = {"bfloat16": "bf16", "float32": "fp32", "float16": "fp16"}
        dtype = str(model.dtype).removeprefix("torch.")
        self.quantization = names.get(dtype, dtype)
        self._vocab_size = int(model.config.vocab_size)
        self._guide: Any = None  # the tokenizer as llguidance sees it, made on first use
        self._guide_lock = threading.Lock()

    @property
    def device(self) -> str:
        return self._device

    @property
    def max_batch(self) -> int:
        """How many generations run at once; the worker admits this many concurrent jobs."""
        return self.engine.max_batch

    def embed(self, texts: list[str]) -> Embeddings:
        """Mean of the last hidden states over each text's tokens, L2-normalised; the texts
        padded into one forward of the base model (no vocabulary projection)."""
        import torch

        encoded = [list(self.tokenizer(text)["input_ids"]) for text in texts]
        limit = int(getattr(self.model.config, "max_position_embeddings", 2048))
        for i, tokens in enumerate(encoded):
            if len(tokens) > limit:
                raise InvalidRequest(
                    f"input[{i}] is {len(tokens)} tokens; this model takes at most {limit}",
                    field="input",
                )
        if not encoded:
            return Embeddings(torch.zeros((0, self.model.config.hidden_size)).numpy(), 0)
        width = max(len(t) for t in encoded)
        ids = torch.zeros((len(encoded), width), dtype=torch.long)
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for row, text_ids in enumerate(encoded):  # right-padded: positions count from 0
            ids[row, : len(text_ids)] = torch.tensor(text_ids)
            mask[row, : len(text_ids)] = 1
        with torch.inference_mode():
            out = self.model.base_model(
                input_ids=ids.to(self.model.device), attention_mask=mask.to(self.model.device)
            )
            hidden = out.last_hidden_state.float()
            weights = mask.to(hidden.device).unsqueeze(-1).float()
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
            vectors = torch.nn.functional.normalize(pooled, dim=-1)
        return Embeddings(vectors.cpu().numpy(), sum(len(t) for t in encoded))

    def close(self) -> None:
        self.engine.close()

    def encode(
        self,
        prompt: str,
        raw: bool,
        messages: tuple[tuple[str, str], ...] = (),
        tools: tuple[dict[str, Any], ...] = (),
    ) -> list[int]:
        """Token ids of the prompt (or conversation), in the chat template unless ``raw``;
        ``tools`` through the template when it knows tools, else in the system message."""
        if not raw and self.tokenizer.chat_template:
            conversation, tool_list = chat_input(prompt, messages, tools, self.knows_tools)
            encoded = self.tokenizer.apply_chat_template(
                conversation,
                tools=tool_list,
                add_generation_prompt=True,
                return_dict=True,
            )
            return list(encoded["input_ids"])
        return list(self.tokenizer(prompt)["input_ids"])

    def _guide_tokenizer(self) -> Any:
        """The vocabulary as llguidance reads it (about a second to build): once per model."""
        with self._guide_lock:
            if self._guide is None:
                from llguidance.hf import from_tokenizer

                self._guide = from_tokenizer(
                    self.tokenizer,
                    n_vocab=self._vocab_size,
                    eos_token=sorted(self.eos_ids),
                )
            return self._guide

    def generate(
        self, prompt: str, params: GenerationParams, cancelled: Callable[[], bool]
    ) -> Iterator[Chunk]:
        ids = self.encode(prompt, params.raw, params.messages, params.tool_functions())
        constraint = None
        if params.json_schema is not None:
            constraint = Constraint(
                self._guide_tokenizer(), compile_schema(params.json_schema), self._vocab_size
            )
        sampler = Sampler(params, self._device, constraint)
        seq = self.engine.submit(ids, params.max_tokens, sampler, cancelled)
        yield from text_chunks(seq, Detokenizer(self.tokenizer).push, params.stop)
