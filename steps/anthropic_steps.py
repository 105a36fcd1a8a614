"""Steps that use the official anthropic client, unchanged, against the queen's Messages
API (``Anthropic(base_url=QUEEN_URL, api_key=...)``: the client adds ``/v1/messages``)."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import jsonschema
from behave import given, then, when

from steps.support.jobs import DEFAULT_MODEL, assert_listed, auth

WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 40}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
# Greedy answers. The client (2.x) has no temperature parameter of its own any more; the
# Messages API takes one, and a user passes it as any other field the client lacks.
GREEDY = {"temperature": 0}
# The order of a streamed message's events (Anthropic's "Streaming Messages"), for one
# text block; the client adds events of its own ("text"), which are not on the wire.
WIRE_EVENTS = (
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
)


def _client(context: Any, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=context.queen_url, api_key=key, max_retries=0, timeout=300)


@given("an Anthropic client pointed at the queen")
def step_client(context: Any) -> None:
    # The key, where the scenario's cluster has one, goes as the client sends it:
    # x-api-key, never Authorization.
    context.anthropic = _client(context, context.env.get("RBEE_API_KEY", "not-needed"))


def _job(context: Any, job_id: str) -> dict[str, Any]:
    response = httpx.get(f"{context.queen_url}/jobs/{job_id}", headers=auth(context))
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record


def _text(message: Any) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


@when('I ask the Anthropic client for a message "{prompt}"')
def step_create(context: Any, prompt: str) -> None:
    context.message = context.anthropic.messages.create(
        model=DEFAULT_MODEL,
        max_tokens=40,
        extra_body=GREEDY,
        messages=[{"role": "user", "content": prompt}],
    )


@then('the Anthropic message is a text answer that mentions "{word}", ended by "{reason}"')
def step_text_answer(context: Any, word: str, reason: str) -> None:
    message = context.message
    assert message.type == "message" and message.role == "assistant", message
    assert message.id.startswith("msg_") and message.model == DEFAULT_MODEL, message
    assert [block.type for block in message.content] == ["text"], message
    assert word in _text(message), message
    assert message.stop_reason == reason and message.stop_sequence is None, message


@then("the Anthropic message's usage counts the prompt and the answer")
def step_usage(context: Any) -> None:
    usage = context.message.usage
    record = _job(context, context.message._request_id)
    result = record["result"]
    assert usage.input_tokens + usage.cache_read_input_tokens == result["prompt_tokens"], usage
    assert usage.output_tokens == result["completion_tokens"] > 0, usage
    assert usage.cache_creation_input_tokens == 0, usage
    assert _text(context.message) == record["text"], record


@then('the job behind the Anthropic message shows in rbee-keeper jobs list as "{state}"')
def step_jobs_list(context: Any, state: str) -> None:
    job_id = context.message._request_id  # the request-id header: the job's id
    assert context.message.id == "msg_" + job_id.removeprefix("job-").replace("-", "")
    assert_listed(context, job_id, state)


@then('an Anthropic client with the key "{key}" is refused with AuthenticationError')
def step_wrong_key(context: Any, key: str) -> None:
    try:
        _client(context, key).messages.create(
            model=DEFAULT_MODEL, max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    except anthropic.AuthenticationError as exc:
        assert exc.status_code == 401, exc
        assert exc.body["error"]["type"] == "authentication_error", exc.body  # type: ignore[index]
    else:
        raise AssertionError("a wrong x-api-key was let through")


@when('I stream an Anthropic message "{prompt}" that stops at "{stop}"')
def step_stream(context: Any, prompt: str, stop: str) -> None:
    context.events = []
    context.deltas = []
    with context.anthropic.messages.stream(
        model=DEFAULT_MODEL,
        max_tokens=40,
        extra_body=GREEDY,
        stop_sequences=[stop],
        messages=[{"role": "user", "content": prompt}],
    ) as stream:
        for event in stream:
            context.events.append(event.type)
            if event.type == "text":
                context.deltas.append(event.text)
        context.message = stream.get_final_message()


@then("the stream's events came in Anthropic's order")
def step_order(context: Any) -> None:
    wire = [kind for kind in context.events if kind in WIRE_EVENTS]
    deltas = wire.count("content_block_delta")
    assert deltas >= 1, context.events
    expected = [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert wire == expected, context.events


@then('the streamed text joins into the final message, which stopped at "{stop}"')
def step_joined(context: Any, stop: str) -> None:
    message = context.message
    text = "".join(context.deltas)
    assert text and text == _text(message), (context.deltas, message)
    assert stop not in text, message
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == stop, message
    assert message.usage.output_tokens > 0 and message.usage.input_tokens > 0, message.usage


@when('I ask the Anthropic client "{prompt}" offering get_weather with tool_choice any')
def step_tool_any(context: Any, prompt: str) -> None:
    context.conversation = [{"role": "user", "content": prompt}]
    context.message = context.anthropic.messages.create(
        model=DEFAULT_MODEL,
        max_tokens=100,
        extra_body=GREEDY,
        tools=[WEATHER],
        tool_choice={"type": "any"},
        messages=context.conversation,
    )


@then("the Anthropic answer is tool_use blocks whose input fits get_weather's input_schema")
def step_tool_use(context: Any) -> None:
    message = context.message
    assert message.stop_reason == "tool_use", message
    assert message.content and all(block.type == "tool_use" for block in message.content)
    for block in message.content:
        assert block.id.startswith("toolu_") and block.name == "get_weather", block
        jsonschema.validate(block.input, WEATHER["input_schema"])


@when('I send the Anthropic tool_result "{result}" back')
def step_tool_result(context: Any, result: str) -> None:
    message = context.message
    results = [
        {"type": "tool_result", "tool_use_id": block.id, "content": result}
        for block in message.content
    ]
    context.conversation += [
        {
            "role": "assistant",
            "content": [b.model_dump(exclude_none=True) for b in message.content],
        },
        {"role": "user", "content": results},
    ]
    context.message = context.anthropic.messages.create(
        model=DEFAULT_MODEL,
        max_tokens=60,
        extra_body=GREEDY,
        tools=[WEATHER],
        messages=context.conversation,
    )


@then('the Anthropic answer is text, from a job that was given the call and "{result}"')
def step_text_after_tool(context: Any, result: str) -> None:
    message = context.message
    assert message.stop_reason in ("end_turn", "max_tokens"), message
    assert [block.type for block in message.content] == ["text"] and _text(message), message
    sent = _job(context, message._request_id)["request"]["messages"]
    contents = [m["content"] for m in sent]
    assert any("<tool_call>" in c and "get_weather" in c for c in contents), sent
    assert f"<tool_response>\n{result}\n</tool_response>" in contents, sent


@when("I count the tokens of a conversation with the Anthropic client, then send it")
def step_count(context: Any) -> None:
    conversation: dict[str, Any] = {
        "model": DEFAULT_MODEL,
        "system": "You are a terse assistant.",
        "messages": [{"role": "user", "content": "Name the capital of France."}],
        "tools": [WEATHER],
    }
    context.counted = context.anthropic.messages.count_tokens(**conversation)
    context.message = context.anthropic.messages.create(
        **conversation, max_tokens=10, extra_body=GREEDY
    )


@then("the count is the prompt tokens the model's worker read for it")
def step_counted(context: Any) -> None:
    counted = context.counted.input_tokens
    usage = context.message.usage
    assert counted > 20, context.counted  # the system prompt and the tool, templated
    assert counted == usage.input_tokens + usage.cache_read_input_tokens, (counted, usage)


@when('I ask the Anthropic client for a message from the model "{model}"')
def step_unknown_model(context: Any, model: str) -> None:
    try:
        context.anthropic.messages.create(
            model=model, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    except anthropic.APIStatusError as exc:
        context.error = exc
    else:
        raise AssertionError(f"the model {model!r} was accepted")


@when("I ask the Anthropic client for a message with extended thinking")
def step_thinking(context: Any) -> None:
    try:
        context.anthropic.messages.create(
            model=DEFAULT_MODEL,
            max_tokens=2048,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=[{"role": "user", "content": "hi"}],
        )
    except anthropic.APIStatusError as exc:
        context.error = exc
    else:
        raise AssertionError("thinking was accepted")


@then('the Anthropic client raises {name} with error type "{kind}" mentioning "{text}"')
def step_error(context: Any, name: str, kind: str, text: str) -> None:
    error = context.error
    assert type(error).__name__ == name, error
    assert error.body["type"] == "error", error.body
    assert error.body["error"]["type"] == kind, error.body
    assert text in error.body["error"]["message"], error.body
