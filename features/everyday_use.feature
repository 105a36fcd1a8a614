Feature: Everyday use: a chat session, pipes, and options where people type them
  rbee-keeper chat holds a conversation, one job per turn, the whole conversation sent each
  time; Ctrl-C stops an answer and keeps the session. infer reads its prompt from a pipe,
  prints its events as JSON lines for scripts, and -q and --queen-url work before or after
  the command. A model reference's scheme is case-insensitive.

  (Without the conversation, the default model answers "What is the secret word?" with a
  word of its own: "banana" in its second answer comes from the first turn.)

  Scenario: A two-turn chat at a terminal: the second answer comes from the first
    Given no queen is running on my port
    When I start rbee-keeper chat --temperature 0 --max-tokens 40 at a terminal
    And I type "The secret word is banana." and wait for the answer
    And I type "What is the secret word?" and wait for the answer
    Then the last answer contains "banana"
    And the job for "What is the secret word?" was sent the first turn, its answer as the assistant's
    When I type "/bye"
    Then the chat exits with code 0
    And the terminal shows "waking queen"
    And the terminal does not show "having a sse connection"
    And no queen answers on my port
    And no rbee process is left running

  Scenario: Ctrl-C stops an answer, cancels its job, and the session goes on
    Given a queen is running
    When I start rbee-keeper chat --temperature 0 --max-tokens 900 at a terminal
    And I type "Write a very long story about bees, their queen and the keeper." and press Ctrl-C once the answer flows
    Then the job for "Write a very long story about bees, their queen and the keeper." becomes "cancelled" within 30 seconds
    And the terminal shows "this turn is left out of the conversation"
    When I type "The secret word is banana." and wait for the answer
    Then the last answer contains "banana"
    And the job for "The secret word is banana." was sent no earlier turn
    When I type "/bye"
    Then the chat exits with code 0
    And the queen still answers on my port

  Scenario: infer reads the prompt from a pipe
    Given a queen is running
    When I pipe "Name the capital of France." to rbee-keeper infer --temperature 0
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"

  Scenario: An instruction as the argument, the document from a pipe
    Given a queen is running
    When I pipe "Bees make honey from nectar. The queen lays all the eggs of the hive." to rbee-keeper infer "Who lays the eggs? Answer in one sentence." --temperature 0
    Then the keeper exits with code 0
    And stdout contains "queen"
    And the last job's prompt is "Who lays the eggs? Answer in one sentence.\n\nBees make honey from nectar. The queen lays all the eggs of the hive."

  Scenario: --json prints every event of the job as one JSON line, for scripts
    Given a queen is running
    When I run rbee-keeper infer "Name the capital of France." --temperature 0 --json
    Then the keeper exits with code 0
    And every line of stdout is one event as JSON
    And the JSON lines' tokens spell "The capital of France is Paris."
    And the last JSON line is an end event of outcome "completed"

  Scenario: -q after the command silences the narration, as before it
    Given a queen is running
    When I run rbee-keeper infer "Name the capital of France." --temperature 0 -q
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"
    And stderr is empty
    When I run rbee-keeper with --queen-url first: -q infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"
    And stderr is empty

  Scenario: HF: is hf: (the seed's example), with the same clear answer
    Given the Hugging Face hub is unreachable
    And a queen is running
    When I run rbee-keeper infer "hello" --model hf:author/minillama
    And I keep the keeper's result as "lower case"
    And I run rbee-keeper infer "hello" --model HF:author/minillama
    Then the keeper exits with code 1
    And stderr's last line contains "is unreachable from this machine"
    And stderr's last line is the same as for "lower case"
