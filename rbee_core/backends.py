"""The inference backend contract: what a plugin implements to run models.

A backend turns a ``LocalModel`` (files on this machine) into a ``LoadedModel`` on a device;
a loaded model turns a prompt into a stream of text chunks. Both are synchronous: the worker
runs them in threads, never in an event loop, so a backend is plain blocking code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import msgspec

from rbee_core.chat_tools import with_tools_in_system
from rbee_core.defaults import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE
from rbee_core.messages import FinishReason
from rbee_core.models import LocalModel
from rbee_core.narration import Narrate

if TYPE_CHECKING:
    from rbee_core.job_request import Generation

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DEFAULT_TEMPERATURE",
    "Backend",
    "BatchingModel",
    "Chunk",
    "ClosableModel",
    "EmbeddingModel",
    "Embeddings",
    "FinishReason",
    "Footprint",
    "GenerationParams",
    "LoadedModel",
    "QuantizedModel",
    "SizedBackend",
    "SplittableBackend",
    "StructuredModel",
]


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """Sampling settings. ``temperature == 0`` means greedy; ``top_k == 0`` disables top-k."""

    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    raw: bool = False
    messages: tuple[tuple[str, str], ...] = ()  # (role, content); replaces the prompt if set
    # A JSON Schema (JSON text) the output must validate against; None for free text.
    json_schema: str | None = None
    # Functions offered to the model (JSON text, rbee_core.chat_tools): a backend whose
    # chat template knows tools passes them to it; otherwise ``chat_messages`` has them in
    # the system message. A backend that renders ``messages`` itself must use one or the other.
    tools: str | None = None

    def tool_functions(self) -> tuple[dict[str, Any], ...]:
        """The offered functions (none without ``tools``)."""
        return tuple(json.loads(self.tools)) if self.tools else ()

    def chat_messages(self) -> tuple[tuple[str, str], ...]:
        """``messages`` for a chat template that knows no tools: the offered functions, if
        any, in the system message (the Hermes layout)."""
        functions = self.tool_functions()
        return with_tools_in_system(self.messages, functions) if functions else self.messages

    @classmethod
    def from_request(cls, request: Generation) -> GenerationParams:
        """The settings of a job's generation part."""
        return cls(
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            top_k=request.top_k,
            seed=request.seed,
            stop=(request.stop,) if isinstance(request.stop, str) else request.stop,
            raw=request.raw,
            messages=request.turns,
            json_schema=request.response_format.enforced if request.response_format else None,
            tools=msgspec.json.encode(request.tools).decode() if request.tools else None,
        )


@dataclass(frozen=True, slots=True)
class Chunk:
    """Newly decoded text. The last chunk of a generation has ``finish_reason`` and counts.

    A chunk with a ``notice`` (and no text) tells the user why nothing comes yet, e.g. that
    the job waits for room in a full batch; the worker narrates it into the job's stream.
    """

    text: str
    # A ``FinishReason`` value; a plugin may give it as the plain string ("stop", "length",
    # "cancelled"): FinishReason is a StrEnum, equal to its string.
    finish_reason: FinishReason | str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    notice: str | None = None
    # Of ``prompt_tokens``, those taken from the worker's cache (a prefix an earlier job
    # left there) rather than computed again; 0 for a backend without a prefix cache.
    cached_tokens: int = 0
    # The stop string (one of ``params.stop``) that ended the generation, if one did.
    stop_sequence: str | None = None


@dataclass(frozen=True, slots=True)
class Embeddings:
    """One unit-length vector per input text (``vectors``: rows of a float32 array,
    shape ``[inputs, dimensions]``), and the tokens the inputs came to."""

    vectors: Any
    prompt_tokens: int


@dataclass(frozen=True, slots=True)
class Footprint:
    """The memory a worker will hold for a model, estimated before it starts (bytes).

    ``weights``: the model's weights as the backend holds them; ``runtime``: the rest of
    the process (interpreter, libraries, the engine's work buffers); ``kv_per_token``: one
    token slot of the KV cache; ``kv_tokens``: the slots the worker will have (from
    ``RBEE_KV_CACHE`` or the backend's default, see ``rbee_core.kv_cache``).
    """

    weights: int
    runtime: int
    kv_per_token: int
    kv_tokens: int

    @property
    def total(self) -> int:
        return self.weights + self.runtime + self.kv_per_token * self.kv_tokens

    def with_kv_tokens(self, kv_tokens: int) -> Footprint:
        return Footprint(self.weights, self.runtime, self.kv_per_token, kv_tokens)


@runtime_checkable
class LoadedModel(Protocol):
    """A model in memory on one device, ready to generate.

    A model may also have optional capabilities, each a Protocol below that the worker
    checks with ``isinstance``: ``BatchingModel``, ``QuantizedModel``, ``StructuredModel``,
    ``EmbeddingModel``, ``ClosableModel``.
    """

    @property
    def device(self) -> str: ...

    def generate(
        self, prompt: str, params: GenerationParams, cancelled: Callable[[], bool]
    ) -> Iterator[Chunk]:
        """Yield text as it is decoded, ending with one chunk that has ``finish_reason``.

        Text must be valid across chunk boundaries (no half of a multi-byte character). The
        backend checks ``cancelled()`` at least once per token and then finishes with
        ``finish_reason="cancelled"``. Unless ``params.raw``, an instruct model's chat
        template wraps the prompt as one user message, or wraps ``params.messages`` (the whole
        conversation) when given; a backend without chat templates uses ``prompt``.
        """
        ...


@runtime_checkable
class BatchingModel(Protocol):
    """A model that serves ``max_batch`` ``generate`` calls at once (without it: 1).

    A batching backend decodes them together; the worker then calls ``generate`` from that
    many threads at once, so it must be thread-safe.
    """

    @property
    def max_batch(self) -> int: ...


@runtime_checkable
class QuantizedModel(Protocol):
    """A model that says how its weights are held (``Q4_K_M``, ``bf16``...), which the
    worker reports and ``worker list`` shows."""

    @property
    def quantization(self) -> str: ...


@runtime_checkable
class StructuredModel(Protocol):
    """A model whose ``structured`` is True when it honours ``params.json_schema`` by
    constraining its decoding, so that the output always validates; the worker refuses a
    job with a schema on any other model."""

    @property
    def structured(self) -> bool: ...


@runtime_checkable
class EmbeddingModel(Protocol):
    """A model that computes embeddings; the worker refuses embedding jobs on any other."""

    def embed(self, texts: list[str]) -> Embeddings:
        """A vector per text, the mean of its tokens' last hidden states, L2-normalised (so
        a dot product is the cosine similarity); thread-safe beside ``generate``."""
        ...


@runtime_checkable
class ClosableModel(Protocol):
    """A model that holds what must be freed when its worker stops (an engine thread, a
    native context); the worker calls ``close`` once, as it shuts down."""

    def close(self) -> None: ...


@runtime_checkable
class Backend(Protocol):
    """An inference engine, registered by name through ``rbee_register_backends``.

    Three optional members refine how rbee uses a backend:

    - ``converts: tuple[str, ...]``: formats of ``formats`` that it loads only by
      converting them (slower to load, bigger in memory). When several backends load a
      model's format, the worker's ``auto`` choice prefers one that loads it natively.
    - ``footprint``: the memory a worker will hold (see ``SizedBackend``). Without it the
      hive guesses from file sizes.
    - ``runs_on(device: str) -> str | None``: ``None`` when it can run on ``device``
      (``"cpu"``, ``"cuda:0"``), else why not, in words for the user (``"built without GPU
      support..."``). Cheap, as ``footprint`` is: the hive asks it. Without it a backend is
      taken to run on every device, and says so at ``load``.
    """

    @property
    def name(self) -> str: ...

    @property
    def formats(self) -> tuple[str, ...]:
        """The ``LocalModel.format`` values this backend loads; the worker picks a backend
        for a model by its format."""
        ...

    def load(self, model: LocalModel, device: str, narrate: Narrate) -> LoadedModel:
        """Load ``model`` on ``device`` (``"cpu"``, ``"cuda:0"``, or ``"auto"`` for the best).

        May take long (conversion, weights); report progress through ``narrate``. Raise an
        ``RbeeError`` with a clear message if the model cannot be loaded.
        """
        ...


@runtime_checkable
class SizedBackend(Protocol):
    """A backend that can say, before a worker starts, what the worker will hold."""

    def footprint(self, model: LocalModel, device: str, free_memory: int) -> Footprint:
        """The memory a worker of this backend will hold for ``model`` on ``device``, which
        has ``free_memory`` bytes free (from the hive's own device probe: ``/proc/meminfo``,
        ``nvidia-smi``); a default that grows with the device, such as a KV cache, is sized
        from it. The hive calls this before it starts a worker, to check that the worker
        fits, so it must be cheap: read file headers, never load the model nor import the
        inference library (not even to ask a GPU's free memory: that would open a CUDA
        context in the hive).
        """
        ...


@runtime_checkable
class SplittableBackend(Protocol):
    """A backend whose worker can hold some of a model's layers while *parts* on other
    hives hold the rest (rbee_core.model_split): llama.cpp's RPC servers."""

    #: What a part's process holds besides its layers (bytes).
    part_runtime: int

    def layers(self, model: LocalModel) -> int:
        """How many layers ``model`` has, from its headers (cheap, as ``footprint`` is)."""
        ...

    def part_command(self, host: str) -> list[str]:
        """The argv of a process that serves a part on this machine at ``host`` (any free
        port). The hive gives it its token in ``RBEE_PART_TOKEN`` (never argv), and it
        prints one JSON line ``{"type": "ready", "port": P}`` once it serves; it lets in
        only a peer that proves holding the token, and ends once its worker is gone."""
        ...
