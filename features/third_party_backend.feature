Feature: A third-party backend plugin
  A backend installed next to rbee (examples/rbee-markov, with its own pyproject and `rbee`
  entry point) is found through the same entry points as the built-ins, and runs a job
  through a real queen and a real worker.

  Background:
    Given the plugin "markov" is installed from examples/rbee-markov

  Scenario: The keeper runs a job on the third-party backend
    Given no queen is running on my port
    When I run rbee-keeper infer "the queen" --model markov-demo --temperature 0 --max-tokens 12
    Then the keeper exits with code 0
    And stdout has 12 words
    And stderr shows, in order:
      | text                                  |
      | waking up the worker for markov-demo  |
      | markov-demo loaded                    |
      | the worker has finished               |
      | finish reason length                  |
    And no rbee process is left running

  Scenario: The same prompt at temperature 0 gives the same words twice
    Given a queen is running
    When I run rbee-keeper infer "the queen" --model markov-demo --temperature 0 --max-tokens 12
    And I remember stdout
    And I run rbee-keeper infer "the queen" --model markov-demo --temperature 0 --max-tokens 12
    Then stdout is what I remembered

  Scenario: The third-party model appears in the catalog's error listing
    Given a queen is running
    When I POST to "/jobs":
      """
      {"model": "no-such-model", "prompt": "hi"}
      """
    Then the response status is 404
    And the error's message mentions "markov-demo"
    And the error's message mentions "smollm2-135m"
