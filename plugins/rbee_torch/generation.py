"""TorchModel: the decode loop, one token per step, streamed as it goes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from transformers import (
    DynamicCache,
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from rbee_core.backends import Chunk, GenerationParams
from rbee_core.stops import StopMatcher
from rbee_torch.detokenize import Detokenizer

__all__ = ["TorchModel"]

_NO_IDS = torch.empty((1, 0), dtype=torch.long)


class TorchModel:
    """A causal LM and its tokenizer on one device."""

    def __init__(self, model: Any, tokenizer: Any, device: str) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self._device = device
        eos = model.generation_config.eos_token_id
        eos_ids = eos if isinstance(eos, list) else [eos]
        if tokenizer.eos_token_id is not None:
            eos_ids.append(tokenizer.eos_token_id)
        self.eos_ids = {int(i) for i in eos_ids if i is not None}

    @property
    def device(self) -> str:
        return self._device

    def encode(
        self, prompt: str, raw: bool, messages: tuple[tuple[str, str], ...] = ()
    ) -> torch.Tensor:
        """Token ids of the prompt (or conversation), in the chat template unless ``raw``."""
        if not raw and self.tokenizer.chat_template:
            conversation = [{"role": r, "content": c} for r, c in messages] or [
                {"role": "user", "content": prompt}
            ]
            encoded = self.tokenizer.apply_chat_template(
                conversation,
                add_generation_prompt=True,
                return_tensors="pt",
                return_dict=True,
            )
            ids = encoded["input_ids"]
        else:
            ids = self.tokenizer(prompt, return_tensors="pt")["input_ids"]
        return ids.to(self._device)  # type: ignore[no-any-return]

    def _sampler(self, params: GenerationParams) -> Callable[[torch.Tensor], torch.Tensor]:
        if params.temperature == 0:
            return lambda logits: logits.argmax(dim=-1)
        warpers = LogitsProcessorList([TemperatureLogitsWarper(params.temperature)])
        if params.top_k > 0:
            warpers.append(TopKLogitsWarper(params.top_k))
        if params.top_p < 1.0:
            warpers.append(TopPLogitsWarper(params.top_p))
        generator = torch.Generator(device=self._device)
        if params.seed is not None:
            generator.manual_seed(params.seed)
        else:
            generator.seed()

        def sample(logits: torch.Tensor) -> torch.Tensor:
            # Warpers ignore input_ids, so an empty tensor stands in for it.
            probs = torch.softmax(warpers(_NO_IDS, logits.float()), dim=-1)  # type: ignore[arg-type]
            return torch.multinomial(probs, 1, generator=generator).squeeze(-1)

        return sample

    @torch.inference_mode()
    def generate(
        self, prompt: str, params: GenerationParams, cancelled: Callable[[], bool]
    ) -> Iterator[Chunk]:
        input_ids = self.encode(prompt, params.raw, params.messages)
        prompt_tokens = int(input_ids.shape[1])
        sample = self._sampler(params)
        detok = Detokenizer(self.tokenizer)
        stops = StopMatcher(params.stop)
        cache = DynamicCache()
        step_input = input_ids
        generated = 0
        finish = "length"
        while generated < params.max_tokens:
            if cancelled():
                finish = "cancelled"
                break
            out = self.model(input_ids=step_input, past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            token = sample(out.logits[:, -1, :])
            token_id = int(token.item())
            generated += 1
            if token_id in self.eos_ids:
                finish = "stop"
                break
            text, hit = stops.feed(detok.push(token_id))
            if text:
                yield Chunk(text=text)
            if hit:
                finish = "stop"
                break
            step_input = token.view(1, 1)
        yield from stops.closing_chunks(finish, prompt_tokens, generated)
