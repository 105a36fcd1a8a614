Feature: Tool calls
  Agent frameworks offer the model functions (`tools`) and run the calls it makes. rbee
  takes OpenAI's tools, tool_choice and parallel_tool_calls, gives the tools to the model
  through its chat template when the template knows tools (else in its system message), and
  returns calls as `tool_calls` with finish_reason "tool_calls". When
  a call is required (or one function is named) its arguments are constrained to the
  function's parameter schema, so even the small default model makes a valid call.

  Background:
    Given a queen is running
    And an OpenAI client pointed at the queen

  Scenario: A tool-call round trip: the call, its result, the final answer
    When I ask "What is the weather in Paris?" offering get_weather with tool_choice "required"
    Then the answer is a call of get_weather with a string city
    And its finish_reason is "tool_calls"
    When I send the call's result "sunny, 21 degrees" back with tool_choice "auto"
    Then the answer is a message that is not a tool call

  Scenario: A streamed round trip: the call as tool_calls deltas, then the streamed answer
    When I stream "What is the weather in Paris?" offering get_weather with tool_choice "required"
    Then the streamed deltas join into a call of get_weather with a string city
    And the stream's finish_reason is "tool_calls"
    When I stream the call's result "sunny, 21 degrees" back with tool_choice "auto"
    Then the streamed answer is text, not a tool call

  Scenario: A named function is the one called, with arguments that fit its schema
    When I ask "What time is it in Tokyo?" offering get_weather and get_time naming get_time
    Then the answer is a call of get_time with a string timezone

  Scenario: With tool_choice "none" the answer is text
    When I ask "What is the weather in Paris?" offering get_weather with tool_choice "none"
    Then the answer is a message that is not a tool call

  Scenario: A model whose chat template knows tools gets them through its template
    Given a copy of the default model whose chat template writes tools itself
    When I ask "What is the weather in Paris?" offering get_weather with tool_choice "required"
    Then the answer is a call of get_weather with a string city
    And the job behind the answer narrated "chat template writes tools itself: a job's tools go to it"
    When I send the call's result "sunny, 21 degrees" back with tool_choice "auto"
    Then the answer is a message that is not a tool call
