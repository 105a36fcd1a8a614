Feature: Anthropic's Messages API
  Tools built on Anthropic's API work against the queen unchanged: the official `anthropic`
  Python client, with its base_url at the queen, sends POST /v1/messages and
  /v1/messages/count_tokens with its key as x-api-key. Every request is an rbee job; the
  answer, its stream, its tool_use blocks and its errors come in Anthropic's shapes.

  Scenario: A message from a keyed queen, the key sent as x-api-key
    Given the cluster's API key is "s3cret"
    And a queen is running
    And an Anthropic client pointed at the queen
    When I ask the Anthropic client for a message "Name the capital of France."
    Then the Anthropic message is a text answer that mentions "Paris", ended by "end_turn"
    And the Anthropic message's usage counts the prompt and the answer
    And the job behind the Anthropic message shows in rbee-keeper jobs list as "completed"
    And an Anthropic client with the key "wrong" is refused with AuthenticationError

  Scenario: A streamed message: Anthropic's events in order, the text joining into the final message
    Given a queen is running
    And an Anthropic client pointed at the queen
    When I stream an Anthropic message "Name the capital of France." that stops at "Paris"
    Then the stream's events came in Anthropic's order
    And the streamed text joins into the final message, which stopped at "Paris"

  Scenario: A tool round trip with tool_choice any: the tool_use, its tool_result, a text answer
    Given a queen is running
    And an Anthropic client pointed at the queen
    When I ask the Anthropic client "What is the weather in Paris?" offering get_weather with tool_choice any
    Then the Anthropic answer is tool_use blocks whose input fits get_weather's input_schema
    When I send the Anthropic tool_result "sunny, 21 degrees" back
    Then the Anthropic answer is text, from a job that was given the call and "sunny, 21 degrees"

  Scenario: count_tokens counts what the model's worker reads
    Given a queen is running
    And an Anthropic client pointed at the queen
    When I count the tokens of a conversation with the Anthropic client, then send it
    Then the count is the prompt tokens the model's worker read for it

  Scenario: Errors come in Anthropic's shape, as the client's own exceptions
    Given a queen is running
    And an Anthropic client pointed at the queen
    When I ask the Anthropic client for a message from the model "claude-sonnet-4-5"
    Then the Anthropic client raises NotFoundError with error type "not_found_error" mentioning "smollm2-135m"
    When I ask the Anthropic client for a message with extended thinking
    Then the Anthropic client raises BadRequestError with error type "invalid_request_error" mentioning "thinking"
