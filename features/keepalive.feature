Feature: Keep-alive comments
  While a stream has nothing to say (a hive waking, a model converting), it sends SSE comment
  lines, so proxies and clients keep the connection; no client may take them for events.
  RBEE_SSE_KEEPALIVE sets the silence before one (15 s by default; 0.2 s here).

  Scenario: Keep-alive comments flow while a job waits, and disturb no client
    Given streams send keep-alive comments after 0.2 seconds of silence
    And a queen is running
    When I submit the prompt "Name the capital of France." at temperature 0
    And I read the job's stream to the end
    Then the stream carries keep-alive comments
    And the stream's text is "The capital of France is Paris."

  Scenario: The keeper is not disturbed by keep-alive comments while a worker starts
    Given streams send keep-alive comments after 0.2 seconds of silence
    And no queen is running on my port
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"
