"""The job contract: what a client asks for in ``POST /jobs``, declared once, in two parts.

*Generation* (``Generation``) is what a worker needs to run the job: the model, the prompt
or conversation, the sampling, the stop strings, the answer's shape, the tools offered, the
texts to embed. The queen forwards exactly this part to the worker (rbee_queen.relay), which
decodes it as a ``Generation``. *Placement* is what only the queen reads: where the job may
run (``hive``, ``device``, ``backend``), how long a worker started for it may idle
(``keep_alive``) and its deadline (``timeout``). A ``JobRequest`` is both: its generation
and, on top, its placement fields; ``request.generation`` is the first part alone.

The declarations are msgspec Structs (the library Litestar speaks natively): decoding
checks every field's type, bounds, length and pattern and refuses unknown fields, at C
speed; ``JobRequest.json_schema`` is the body's schema in the queen's OpenAPI document, and
the keeper's job options are made from the same fields (rbee_keeper.job_options). A refusal
is an ``InvalidRequest`` naming the field, in the words of ``_refusal`` below; ``null`` for
a field means its default.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Self, get_args

import msgspec
from msgspec import Meta
from msgspec import inspect as types

from rbee_core.chat_tools import MAX_TOOLS, Tool
from rbee_core.decoding import Fault, fault_of
from rbee_core.defaults import DEFAULT_MAX_TOKENS, DEFAULT_TEMPERATURE
from rbee_core.errors import InvalidRequest
from rbee_core.json_schema import resolved, rewrite
from rbee_core.response_format import ResponseFormat

__all__ = [
    "LIMITS",
    "MAX_CONVERSATION_CHARS",
    "MAX_EMBED_INPUTS",
    "MAX_MESSAGES",
    "MAX_MODEL_CHARS",
    "MAX_NAME_CHARS",
    "MAX_PROMPT_CHARS",
    "MAX_STOP_CHARS",
    "MAX_STOP_SEQUENCES",
    "PLACEMENT",
    "ROLES",
    "Generation",
    "JobRequest",
    "Message",
]

MAX_PROMPT_CHARS = 200_000
MAX_STOP_SEQUENCES = 8
# Every stop string is searched for after each token: a long one costs every token.
MAX_STOP_CHARS = 256
MAX_EMBED_INPUTS = 256
# A conversation is kept with its job (memory, then the job store) and rendered whole by
# the chat template: its size is bounded itself, not only through the 1 MiB body.
MAX_MESSAGES = 1024
MAX_CONVERSATION_CHARS = 512 * 1024
MAX_MODEL_CHARS = 4096  # a model reference: a name, a path, a URL
MAX_NAME_CHARS = 256  # a hive, a device, a backend
MAX_SPLIT_HIVES = 16  # llama.cpp's GGML_RPC_MAX_SERVERS, and one for the worker's
EMBED_LABEL_CHARS = 200  # an embedding job's prompt is only its label (jobs list)
_NOT_BLANK = r"\S"

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = get_args(Role)
StopText = Annotated[str, Meta(min_length=1, max_length=MAX_STOP_CHARS)]
Name = Annotated[str, Meta(min_length=1, max_length=MAX_NAME_CHARS, pattern=_NOT_BLANK)]


class Message(msgspec.Struct, frozen=True):
    """One turn of a conversation: who speaks, and what they say."""

    role: Role
    content: Annotated[str, Meta(max_length=MAX_CONVERSATION_CHARS)]


class Generation(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """What a worker needs to run a job (the queen sends it this part). Build it from
    untrusted JSON with ``from_json``."""

    model: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=MAX_MODEL_CHARS,
            pattern=_NOT_BLANK,
            description="A catalog name (smollm2-135m) or a reference (file:/path, "
            "hf:author/repo, pypi:PACKAGE/FILE).",
        ),
    ]
    prompt: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=MAX_PROMPT_CHARS,
            pattern=_NOT_BLANK,
            description="The text to answer. With messages, the last user message (for "
            "backends without a chat template); an embedding job may leave it out.",
        ),
    ] = ""
    max_tokens: Annotated[int, Meta(ge=1, le=4096, description="Most tokens to generate.")] = (
        DEFAULT_MAX_TOKENS
    )
    temperature: Annotated[
        float,
        Meta(ge=0.0, le=2.0, description="Sampling temperature; 0 means greedy (deterministic)."),
    ] = DEFAULT_TEMPERATURE
    top_p: Annotated[
        float, Meta(gt=0.0, le=1.0, description="Nucleus sampling: keep this mass.")
    ] = 1.0
    top_k: Annotated[
        int,
        Meta(ge=0, le=1_000_000, description="Sample from the k likeliest tokens (0: all)."),
    ] = 0
    seed: Annotated[
        Annotated[int, Meta(ge=0, le=2**63 - 1)] | None,
        Meta(description="Seed for reproducible sampling."),
    ] = None
    # After decoding, always a tuple: one string is a list of one.
    stop: Annotated[
        StopText | Annotated[tuple[StopText, ...], Meta(max_length=MAX_STOP_SEQUENCES)],
        Meta(description="Stop when this text appears (a string, or a list of them)."),
    ] = ()
    raw: Annotated[
        bool, Meta(description="Send the prompt as is, without the model's chat template.")
    ] = False
    messages: Annotated[
        tuple[Message, ...],
        Meta(
            min_length=1,
            max_length=MAX_MESSAGES,
            description="A whole conversation, for backends with a chat template.",
        ),
    ] = ()
    response_format: Annotated[
        ResponseFormat | None,
        Meta(
            description="The answer's shape: any JSON object, or JSON valid against a schema "
            "(decoding is constrained). OpenAI's response_format."
        ),
    ] = None
    # A chat template that knows tools writes them; any other model gets them in its system
    # message (rbee_core.chat_tools). The API that offered them reads the answer's calls.
    tools: Annotated[
        Annotated[tuple[Tool, ...], Meta(min_length=1, max_length=MAX_TOOLS)] | None,
        Meta(description="Functions offered to the model (OpenAI's function format)."),
    ] = None
    embed: Annotated[
        tuple[Annotated[str, Meta(min_length=1, max_length=MAX_PROMPT_CHARS)], ...],
        Meta(
            min_length=1,
            max_length=MAX_EMBED_INPUTS,
            description="An embedding job: a vector for each of these texts, no tokens.",
        ),
    ] = ()

    def __post_init__(self) -> None:
        model = self.model.strip()
        if model != self.model:
            msgspec.structs.force_setattr(self, "model", model)
        if not self.prompt:
            if not self.embed:
                raise InvalidRequest("prompt is required", field="prompt")
            msgspec.structs.force_setattr(self, "prompt", self.embed[0][:EMBED_LABEL_CHARS])
        if isinstance(self.stop, str):
            msgspec.structs.force_setattr(self, "stop", (self.stop,))
        if sum(len(m.content) for m in self.messages) > MAX_CONVERSATION_CHARS:
            raise _conversation_too_long()
        if self.response_format is not None and not self.response_format.constrained:
            msgspec.structs.force_setattr(self, "response_format", None)  # free text
        if self.tools and len({t.name for t in self.tools}) != len(self.tools):
            raise InvalidRequest("tools must have distinct names", field="tools")

    @property
    def turns(self) -> tuple[tuple[str, str], ...]:
        """``messages`` as (role, content) pairs, as chat templates and the prefix index
        take them."""
        return tuple((m.role, m.content) for m in self.messages)

    @classmethod
    def from_json(cls, payload: Any) -> Self:
        """Validate a decoded JSON body; raise ``InvalidRequest`` naming the first bad field."""
        if not isinstance(payload, dict):
            raise InvalidRequest(
                f"the request body must be a JSON object, got {type(payload).__name__}"
            )
        unknown = sorted(payload.keys() - cls.__struct_fields__)
        if unknown:
            raise InvalidRequest(
                f"unknown field {unknown[0]!r}; allowed: {', '.join(cls.__struct_fields__)}",
                field=unknown[0],
            )
        given = {name: value for name, value in payload.items() if value is not None}
        for name, value in given.items():
            if isinstance(value, tuple):  # no JSON value: refused as a JSON client's non-list
                raise _refusal(Fault((name,), "type", value))
        try:
            return msgspec.convert(given, cls)
        except msgspec.ValidationError as error:
            raise _refusal(fault_of(error, given)) from None

    def to_json(self) -> dict[str, Any]:
        """The request as JSON, as the job's record shows it: its model, prompt and every
        sampling setting, and the other fields where given."""
        data: dict[str, Any] = msgspec.to_builtins(self)
        for name, value in list(data.items()):
            if name in _SHOWN_WHEN_GIVEN and not value:
                del data[name]
            elif type(value) is tuple:
                data[name] = list(value)  # as JSON decodes it
        if self.response_format is not None:
            data["response_format"] = self.response_format.to_json()
        return data

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON Schema of a body (the queen's OpenAPI document serves it), every
        reference resolved in place."""

        def no_empty_default(spec: dict[str, Any]) -> dict[str, Any]:
            if spec.get("default", 0) in (None, "", ()):
                del spec["default"]  # a field left out, not one sent empty (that is refused)
            return spec

        schema: dict[str, Any] = rewrite(resolved(msgspec.json.schema(cls)), no_empty_default)
        schema["anyOf"] = [{"required": ["prompt"]}, {"required": ["embed"]}]
        return schema


class JobRequest(Generation, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A job as a client asks for it: its ``Generation``, and where and how long it may run
    (its placement, what the queen reads)."""

    hive: Annotated[Name | None, Meta(description="Run on this hive (see GET /hives).")] = None
    device: Annotated[
        Name | None, Meta(description="Run on this device of the hive: cpu, cuda:0, ...")
    ] = None
    backend: Annotated[
        Name | None,
        Meta(
            description="Inference backend: torch or llamacpp (default: the best installed "
            "for the model's format, llamacpp for GGUF files)."
        ),
    ] = None
    keep_alive: Annotated[
        # Checked after decoding (__post_init__): a number cannot be declared "> 0 or -1".
        Annotated[
            float, Meta(extra_json_schema={"anyOf": [{"exclusiveMinimum": 0}, {"const": -1}]})
        ]
        | None,
        Meta(
            description="Seconds a worker started for this job may stay idle (default: the "
            "hive's); -1 keeps it loaded, never unloaded to make room for another model.",
        ),
    ] = None
    timeout: Annotated[
        Annotated[float, Meta(gt=0.0)] | None,
        Meta(description="Seconds from submission; a job not finished by then fails."),
    ] = None
    split: Annotated[
        Name | Annotated[tuple[Name, ...], Meta(max_length=MAX_SPLIT_HIVES)] | None,
        Meta(
            description="Split the model across these hives (names, or one comma-separated "
            "text): its worker runs on the first, parts of its layers on the others. "
            "Without it a model no hive has room for is split across hives on its own."
        ),
    ] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("hive", "device", "backend"):
            value = getattr(self, name)
            if value is not None and value != value.strip():
                msgspec.structs.force_setattr(self, name, value.strip())
        if self.split is not None:
            given = (self.split,) if isinstance(self.split, str) else self.split
            hives = tuple(h.strip() for text in given for h in text.split(",") if h.strip())
            if len(hives) < 2 or len(set(hives)) != len(hives):
                raise InvalidRequest(
                    'split must name two hives or more, each once (e.g. "h1,h2")', "split"
                )
            if self.hive is not None and self.hive != hives[0]:
                raise InvalidRequest(
                    f"hive {self.hive!r} and split {','.join(hives)!r} disagree on where the "
                    "worker runs: the worker of a split runs on its first hive",
                    field="split",
                )
            msgspec.structs.force_setattr(self, "split", hives)
        keep = self.keep_alive
        if keep is not None and not (keep > 0 or keep == -1):
            raise _refusal(Fault(("keep_alive",), "value", keep))

    @property
    def generation(self) -> Generation:
        """The part a worker needs: what the queen forwards to it."""
        return Generation(**{name: getattr(self, name) for name in Generation.__struct_fields__})


PLACEMENT: tuple[str, ...] = tuple(
    name for name in JobRequest.__struct_fields__ if name not in Generation.__struct_fields__
)
"""The placement fields: what the queen reads and never forwards."""
_SHOWN_WHEN_GIVEN = frozenset({"messages", "response_format", "tools", "embed", *PLACEMENT})


def _conversation_too_long() -> InvalidRequest:
    return InvalidRequest(
        f"messages are too long: more than {MAX_CONVERSATION_CHARS} characters of content together",
        field="messages",
        maximum=MAX_CONVERSATION_CHARS,
    )


def _scalars() -> dict[str, Any]:
    """Each field's scalar declaration (a msgspec ``inspect`` type: its bounds, lengths)."""
    out: dict[str, Any] = {}
    info = types.type_info(JobRequest)
    assert isinstance(info, types.StructType)
    for field in info.fields:
        kind = field.type
        while isinstance(kind, types.Metadata | types.UnionType):
            kind = kind.type if isinstance(kind, types.Metadata) else kind.types[0]
        out[field.name] = kind
    return out


_SCALARS = _scalars()


def _limits() -> dict[str, tuple[float, float]]:
    out = {}
    for name, kind in _SCALARS.items():
        if isinstance(kind, types.IntType | types.FloatType) and kind.le is not None:
            low = kind.ge if kind.ge is not None else kind.gt
            out[name] = (0 if low is None else low, kind.le)
    return out


LIMITS = _limits()
"""Each bounded number's lowest and highest value (``top_p``'s lowest is exclusive), as
declared."""


def _refusal(fault: Fault) -> InvalidRequest:
    """A fault in a job body, said as rbee says it (docs/api.md), naming the field."""
    name, value = fault.field, fault.value
    if name is None:
        return InvalidRequest(f"the request body is not a valid job: {value!r}")
    if name == "response_format":
        return ResponseFormat.refusal(fault.within(name))
    if name == "split":
        return InvalidRequest(
            f"split must be a list of up to {MAX_SPLIT_HIVES} hive names, or one text of "
            f"them separated by commas, got {value!r}",
            field=name,
        )
    if name in ("stop", "embed", "messages", "tools"):
        return _list_refusal(name, fault)
    if name == "raw":
        return InvalidRequest(f"raw must be true or false, got {value!r}", field=name)
    if name == "timeout":
        return InvalidRequest(f"timeout must be a number of seconds > 0, got {value!r}", name)
    if name == "keep_alive":
        return InvalidRequest(
            f"keep_alive must be a number of seconds > 0, or -1 to keep the worker loaded, "
            f"got {value!r}",
            field=name,
        )
    kind = _SCALARS[name]
    if isinstance(kind, types.StrType):
        cap = kind.max_length
        if isinstance(value, str) and cap is not None and len(value) > cap:
            return InvalidRequest(
                f"{name} is too long: {len(value)} characters, at most {cap}", field=name
            )
        if name in PLACEMENT:
            return InvalidRequest(f"{name} must be a non-empty string", field=name)
        if fault.kind == "missing":
            return InvalidRequest(f"{name} is required", field=name)
        if not isinstance(value, str):
            return InvalidRequest(f"{name} must be a string, got {value!r}", field=name)
        return InvalidRequest(f"{name} must not be empty", field=name)
    integer = isinstance(kind, types.IntType)
    if fault.kind == "type":
        return InvalidRequest(
            f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}", name
        )
    if isinstance(value, float) and not math.isfinite(value):
        return InvalidRequest(f"{name} must be a finite number, got {value!r}", field=name)
    low, high = LIMITS[name]
    if kind.gt is not None and value == kind.gt:
        return InvalidRequest(
            f"{name} must be greater than {low:g} and at most {high:g}", field=name
        )
    return InvalidRequest(
        f"{name} must be between {low:g} and {high:g}, got {value!r}",
        field=name,
        minimum=low,
        maximum=high,
    )


def _list_refusal(name: str, fault: Fault) -> InvalidRequest:
    """A fault in one of the list fields, or in one of their items."""
    value, inner = fault.value, fault.path[1:]
    index = inner[0] if inner else None
    item = f"{name}[{index}]"
    if name == "stop":
        if isinstance(value, str) and len(value) > MAX_STOP_CHARS:
            return InvalidRequest(
                f"{item if inner else name} is {len(value)} characters, at most {MAX_STOP_CHARS}",
                field=name,
                maximum=MAX_STOP_CHARS,
            )
        if not inner and isinstance(value, list) and len(value) > MAX_STOP_SEQUENCES:
            return InvalidRequest(f"stop takes at most {MAX_STOP_SEQUENCES} sequences", name)
        return InvalidRequest("stop must be a non-empty string or a list of them", field=name)
    if name == "embed":
        if not inner:
            return InvalidRequest(f"embed must be a list of 1 to {MAX_EMBED_INPUTS} texts", name)
        if isinstance(value, str) and len(value) > MAX_PROMPT_CHARS:
            return InvalidRequest(
                f"{item} is {len(value)} characters, at most {MAX_PROMPT_CHARS}", name
            )
        return InvalidRequest(f"{item} must be a non-empty string", field=name)
    if name == "messages":
        if not inner:
            if isinstance(value, list) and len(value) > MAX_MESSAGES:
                return InvalidRequest(
                    f"messages has {len(value)} messages, at most {MAX_MESSAGES}",
                    field=name,
                    maximum=MAX_MESSAGES,
                )
            return InvalidRequest("messages must be a non-empty list", field=name)
        if inner[1:] == ("content",) and isinstance(value, str):
            return _conversation_too_long()  # one message is more than all may be
        return InvalidRequest(
            f"{item} must be an object with a role ({', '.join(ROLES)}) and a string content",
            field=name,
        )
    # tools
    if not inner:
        return InvalidRequest(f"tools must be a list of 1 to {MAX_TOOLS} functions", name)
    part = inner[1] if len(inner) > 1 and fault.kind != "unknown" else None
    if part == "name":
        return InvalidRequest(f"{item}.name must be 1-64 letters, digits, _ or -", name)
    if part == "description":
        return InvalidRequest(f"{item}.description must be a string", field=name)
    if part == "parameters":
        return InvalidRequest(f"{item}.parameters must be a JSON Schema object", field=name)
    return InvalidRequest(
        f"{item} must be an object with a name, and a description and parameters if any", name
    )
