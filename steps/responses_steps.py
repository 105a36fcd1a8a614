"""Steps for OpenAI's Responses API: the official openai client's ``responses`` and the
openai-agents SDK on its default (Responses) model, unchanged, against the queen."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
from behave import then, when
from pydantic import BaseModel

from steps.support.jobs import DEFAULT_MODEL, assert_listed, auth

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 40}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
# What the agent's tool answers: nothing the model could have said on its own.
CODE = "QX-4417"
SECRET = f"The secret code of Paris is {CODE}."


class City(BaseModel):
    name: str
    population: int


def _job_of(context: Any, response_id: str) -> dict[str, Any]:
    """The record of the job a response id names (``resp_<uuid>`` is job ``job-<uuid>``)."""
    job_id = "job-" + response_id.removeprefix("resp_")
    answer = httpx.get(f"{context.queen_url}/jobs/{job_id}", headers=auth(context), timeout=10)
    assert answer.status_code == 200, answer.text
    record: dict[str, Any] = answer.json()
    return record


@when('I create a Responses API response to "{prompt}"')
def step_create(context: Any, prompt: str) -> None:
    raw = context.openai.responses.with_raw_response.create(
        model=DEFAULT_MODEL, input=prompt, temperature=0, max_output_tokens=40
    )
    context.response_job = raw.headers["x-rbee-job-id"]
    context.response = raw.parse()


@then("the Responses API response is completed with a message of text")
def step_completed(context: Any) -> None:
    response = context.response
    assert response.object == "response" and response.status == "completed", response
    (message,) = response.output
    assert message.type == "message" and message.role == "assistant", message
    assert message.content[0].type == "output_text", message
    assert response.output_text.strip(), response


@then("the Responses API response's usage adds up")
def step_usage(context: Any) -> None:
    usage = context.response.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0, usage
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens, usage
    assert usage.output_tokens_details.reasoning_tokens == 0, usage


@then(
    'the Responses API response\'s id names its job, which rbee-keeper jobs list shows as "{state}"'
)
def step_named_job(context: Any, state: str) -> None:
    record = _job_of(context, context.response.id)
    assert record["job_id"] == context.response_job, (record, context.response_job)
    assert record["text"] == context.response.output_text, record
    assert_listed(context, record["job_id"], state)


@when('I stream a Responses API response to "{prompt}"')
def step_stream(context: Any, prompt: str) -> None:
    stream = context.openai.responses.create(
        model=DEFAULT_MODEL, input=prompt, temperature=0, max_output_tokens=40, stream=True
    )
    context.events = list(stream)


@then(
    "the Responses API events are created, in_progress, the message's events and completed, "
    "numbered in order"
)
def step_event_order(context: Any) -> None:
    types = [event.type for event in context.events]
    deltas = types.count("response.output_text.delta")
    assert deltas >= 2, types  # the answer came piece by piece
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ], types
    assert [event.sequence_number for event in context.events] == list(range(len(types)))
    ids = {event.response.id for event in context.events if hasattr(event, "response")}
    assert len(ids) == 1, ids


@then("the Responses API text deltas join into the completed response's output_text")
def step_deltas_join(context: Any) -> None:
    events = context.events
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = next(e for e in events if e.type == "response.output_text.done")
    final = events[-1].response
    assert text.strip() and text == done.text == final.output_text, (text, final)
    assert final.status == "completed" and final.usage.output_tokens > 0, final
    assert _job_of(context, final.id)["text"] == text


@when('I ask the Responses API to parse a City from "{prompt}"')
def step_parse(context: Any, prompt: str) -> None:
    context.response = context.openai.responses.parse(
        model=DEFAULT_MODEL, input=prompt, text_format=City, temperature=0, max_output_tokens=60
    )


@then("the Responses API answer validates against the City schema")
def step_valid_city(context: Any) -> None:
    response = context.response
    assert response.status == "completed", response
    # The answer as sent, checked strictly (no coercion), and as the client parsed it.
    checked = City.model_validate_json(response.output_text, strict=True)
    assert response.output_parsed == checked and checked.name, response


@then('the Responses API job behind it was held to the JSON schema "{name}"')
def step_held(context: Any, name: str) -> None:
    record = _job_of(context, context.response.id)
    form = record["request"]["response_format"]
    assert form["type"] == "json_schema" and form["json_schema"]["name"] == name, form


@when('I ask the Responses API "{prompt}" offering get_weather with tool_choice "{choice}"')
def step_ask_tool(context: Any, prompt: str, choice: str) -> None:
    context.items = [{"role": "user", "content": prompt}]
    context.response = context.openai.responses.create(
        model=DEFAULT_MODEL,
        input=context.items,
        tools=[WEATHER],
        tool_choice=choice,
        temperature=0,
        max_output_tokens=100,
    )


@then("the Responses API output is a function_call of get_weather with a string city")
def step_is_call(context: Any) -> None:
    response = context.response
    assert response.status == "completed", response
    assert response.output and all(i.type == "function_call" for i in response.output), response
    for call in response.output:
        assert call.name == "get_weather" and call.call_id, call
        arguments = json.loads(call.arguments)
        assert set(arguments) == {"city"} and isinstance(arguments["city"], str), arguments


@when('I send the Responses API the call and its output "{output}"')
def step_send_output(context: Any, output: str) -> None:
    call = context.response.output[0]
    context.call, context.call_output = call, output
    context.items += [
        call.model_dump(exclude_none=True),  # the item as it came, as agent SDKs send it back
        {"type": "function_call_output", "call_id": call.call_id, "output": output},
    ]
    context.response = context.openai.responses.create(
        model=DEFAULT_MODEL,
        input=context.items,
        tools=[WEATHER],
        tool_choice="auto",
        temperature=0,
        max_output_tokens=60,
    )


@then("the Responses API answer is a message, not a function call")
def step_not_call(context: Any) -> None:
    response = context.response
    assert [item.type for item in response.output] == ["message"], response
    assert response.output_text.strip() and response.status in ("completed", "incomplete")


@then("the Responses API job behind it was sent the call and its output")
def step_sent_output(context: Any) -> None:
    messages = _job_of(context, context.response.id)["request"]["messages"]
    contents = [m["content"] for m in messages]
    assert any(f'"name": "{context.call.name}"' in c and "<tool_call>" in c for c in contents)
    assert f"<tool_response>\n{context.call_output}\n</tool_response>" in contents, messages


@when('an openai-agents Agent on its default model must use its lookup tool to answer "{question}"')
def step_agent(context: Any, question: str) -> None:
    # The SDK is imported here: it is a test dependency of this feature only.
    from agents import (
        Agent,
        ModelSettings,
        Runner,
        function_tool,
        set_default_openai_client,
        set_tracing_disabled,
    )

    set_tracing_disabled(True)  # its traces would go to api.openai.com
    client = openai.AsyncOpenAI(
        base_url=f"{context.queen_url}/v1", api_key="not-needed", max_retries=0, timeout=300
    )
    set_default_openai_client(client, use_for_tracing=False)
    context.tool_calls = []

    @function_tool
    def secret_code(city: str) -> str:
        """Look up the secret code of a city."""
        context.tool_calls.append(city)
        return SECRET

    agent = Agent(
        name="Clerk",
        instructions="Answer with what the tools tell you.",
        model=DEFAULT_MODEL,  # a name: the SDK's default, Responses API model
        tools=[secret_code],
        model_settings=ModelSettings(tool_choice="required", temperature=0, max_tokens=60),
    )
    context.run = Runner.run_sync(agent, question, max_turns=3)


@then("the agent's tool was called once with a string city")
def step_tool_called(context: Any) -> None:
    assert len(context.tool_calls) == 1 and isinstance(context.tool_calls[0], str)
    kinds = [item.type for item in context.run.new_items]
    assert kinds == ["tool_call_item", "tool_call_output_item", "message_output_item"], kinds
    assert context.run.new_items[1].output == SECRET


@then("the agent's second request sent the tool's output back to the model")
def step_output_sent(context: Any) -> None:
    first, second = context.run.raw_responses
    assert first.output[0].type == "function_call", first
    messages = _job_of(context, second.response_id)["request"]["messages"]
    assert messages[-1] == {
        "role": "user",
        "content": f"<tool_response>\n{SECRET}\n</tool_response>",
    }
    context.second = second


@then("the agent's final output is the text of that second response, with the tool's code")
def step_final_output(context: Any) -> None:
    final = context.run.final_output
    record = _job_of(context, context.second.response_id)
    assert isinstance(final, str) and final.strip() and final == record["text"], (final, record)
    # The greedy default model answers from the tool's output: it has no other way to know.
    assert CODE in final, final


@when('I create a Responses API response with previous_response_id "{previous}"')
def step_previous(context: Any, previous: str) -> None:
    context.error = None
    try:
        context.openai.responses.create(
            model=DEFAULT_MODEL, input="And then?", previous_response_id=previous
        )
    except openai.APIStatusError as exc:
        context.error = exc
