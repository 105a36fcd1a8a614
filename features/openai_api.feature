Feature: OpenAI-compatible API
  Tools that speak the OpenAI API work against the queen unchanged: the official `openai`
  Python client, with its base_url pointing at the queen. Every request is an rbee job.

  Background:
    Given a queen is running
    And an OpenAI client pointed at the queen

  Scenario: Listing the models
    When I list the models with the OpenAI client
    Then the model list includes "smollm2-135m"

  Scenario: A chat completion, not streamed
    When I ask the OpenAI client for a chat completion of "Name the capital of France."
    Then the completion's message is "The capital of France is Paris."
    And the completion's finish_reason is "stop"
    And the completion's usage adds up
    And the job behind it shows in rbee-keeper jobs list as "completed"

  Scenario: A chat completion, streamed, with usage
    When I stream a chat completion of "Name the capital of France." with usage
    Then every streamed chunk is a "chat.completion.chunk" with the same id
    And the streamed content is "The capital of France is Paris."
    And the last choice chunk has finish_reason "stop"
    And the stream ends with a usage chunk that adds up

  Scenario: A system message shapes the conversation
    When I ask the OpenAI client for a chat completion with a system message "Always answer in French." and "Name the capital of France."
    Then the job behind it was sent both messages

  Scenario: A legacy completion
    When I ask the OpenAI client for a completion of "The capital of France is" with at most 8 tokens
    Then the completion's text contains "Paris"
    And the completion's finish_reason is "length"

  Scenario: An unknown model is a NotFoundError in OpenAI's error shape
    When I ask the OpenAI client for a chat completion with model "gpt-17"
    Then the OpenAI client raises NotFoundError with status 404
    And the OpenAI error has type "invalid_request_error", param "model" and code "model_not_found"
    And the OpenAI error's message mentions "smollm2-135m"

  Scenario Outline: An unsupported or out-of-range parameter is a BadRequestError that names it
    When I ask the OpenAI client for a chat completion with <param> set to <value>
    Then the OpenAI client raises BadRequestError with status 400
    And the OpenAI error has type "invalid_request_error" and param "<param>"
    And the queen is still healthy

    Examples:
      | param                 | value              |
      | n                     | 2                  |
      | temperature           | 5                  |
      | max_completion_tokens | 0                  |
      | logprobs              | true               |
      | top_p                 | 0                  |
      | tool_choice           | "required"         |
      | response_format       | {"type": "yaml"}   |

  Scenario: A malformed body gets an OpenAI-shaped 400
    When I POST to "/v1/chat/completions":
      """
      {"model": "smollm2-135m", "messages": [
      """
    Then the response status is 400
    And the OpenAI-shaped error mentions "not valid JSON"

  Scenario: A client that leaves a stream cancels its job and frees the worker
    When I stream a chat completion of "Write a very long story about bees." and leave after 3 chunks
    Then the job behind it becomes "cancelled"
    And the job behind it generated fewer than 100 tokens
    When I ask the OpenAI client for a chat completion of "Name the capital of France."
    Then the completion's message is "The capital of France is Paris."
