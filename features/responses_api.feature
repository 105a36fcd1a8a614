Feature: OpenAI's Responses API
  The official `openai` client's `responses.create` and the `openai-agents` SDK with its
  default model (which speaks the Responses API) work against the queen unchanged, with
  base_url pointing at its /v1. Each request is an rbee job; the response's id names it.
  The API is stateless: a conversation is sent whole, as input items.

  Background:
    Given a queen is running
    And an OpenAI client pointed at the queen

  Scenario: A response, not streamed, is a job
    When I create a Responses API response to "Name the capital of France."
    Then the Responses API response is completed with a message of text
    And the Responses API response's usage adds up
    And the Responses API response's id names its job, which rbee-keeper jobs list shows as "completed"

  Scenario: A streamed response comes as OpenAI's events, in OpenAI's order
    When I stream a Responses API response to "Name the capital of France."
    Then the Responses API events are created, in_progress, the message's events and completed, numbered in order
    And the Responses API text deltas join into the completed response's output_text

  Scenario: text.format holds the answer to a JSON schema
    When I ask the Responses API to parse a City from "Name the capital of France."
    Then the Responses API answer validates against the City schema
    And the Responses API job behind it was held to the JSON schema "City"

  Scenario: A function tool round trip by hand: the call, its output, the answer
    When I ask the Responses API "What is the weather in Paris?" offering get_weather with tool_choice "required"
    Then the Responses API output is a function_call of get_weather with a string city
    When I send the Responses API the call and its output "sunny, 21 degrees"
    Then the Responses API answer is a message, not a function call
    And the Responses API job behind it was sent the call and its output

  Scenario: An openai-agents Agent on its default model calls its tool and answers from its output
    When an openai-agents Agent on its default model must use its lookup tool to answer "What is the secret code of Paris?"
    Then the agent's tool was called once with a string city
    And the agent's second request sent the tool's output back to the model
    And the agent's final output is the text of that second response, with the tool's code

  Scenario: What a stateless API cannot do is a 400 that names it
    When I create a Responses API response with previous_response_id "resp_123"
    Then the OpenAI client raises BadRequestError with status 400
    And the OpenAI error has type "invalid_request_error" and param "previous_response_id"
