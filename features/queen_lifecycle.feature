Feature: Queen lifecycle
  rbee-keeper wakes the queen when nothing answers at its URL, and after the job puts back
  to sleep only what it woke. The queen, in turn, stops every worker it started.

  Scenario: The keeper wakes a sleeping queen, answers, and puts everything back to sleep
    Given no queen is running on my port
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"
    And stderr shows, in order:
      | text                                                       |
      | queen is asleep, waking queen.                             |
      | queen is awake and healthy.                                |
      | submitted                                                  |
      | having a sse connection from the bee keeper to the queen bee |
      | waking up the worker                                       |
      | smollm2-135m loaded                                        |
      | the worker bee is awake                                    |
      | starting inference                                         |
      | the worker has finished with the inference                 |
      | the queen is asleep again.                                 |
    And no queen answers on my port
    And no rbee process is left running

  Scenario: A queen that was already running is left running, and the next job is quicker
    Given a queen is running
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"
    And stderr does not show "waking queen"
    And stderr does not show "asleep again"
    And the queen still answers on my port
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"
    And stderr does not show "waking up the worker"
    And stderr shows, in order:
      | text                                       |
      | already has smollm2-135m loaded            |
      | the worker has finished with the inference |

  Scenario: The keeper starts, checks and stops a queen on a custom port
    Given no queen is running on my port
    When I run rbee-keeper queen start
    Then the keeper exits with code 0
    And the queen still answers on my port
    When I run rbee-keeper queen status
    Then the keeper exits with code 0
    And stdout contains "is running at"
    When I run rbee-keeper queen stop
    Then the keeper exits with code 0
    And no queen answers on my port
    And no rbee process is left running
    When I run rbee-keeper queen status
    Then the keeper exits with code 1
    And stdout contains "no queen is running"

  Scenario: Stopping a queen stops the workers it started
    Given a queen is running
    When I run rbee-keeper infer "Hi" --max-tokens 5
    Then the keeper exits with code 0
    And a worker process is running
    When I run rbee-keeper queen stop
    Then no rbee process is left running

  Scenario: Workers do not outlive a queen that was killed
    Given a queen is running
    When I run rbee-keeper infer "Hi" --max-tokens 5
    Then the keeper exits with code 0
    And a worker process is running
    When the queen is killed with SIGKILL
    Then no rbee process is left running

  Scenario: A second queen on a port that is taken fails with a clear message
    Given a queen is running
    When I run queen-rbee on the same port
    Then it exits with code 1
    And its stderr contains "cannot listen on 127.0.0.1"
    And the queen still answers on my port

  Scenario: The keeper reports an out-of-range setting and stops the queen it started
    Given no queen is running on my port
    When I run rbee-keeper infer "hi" --temperature 9
    Then the keeper exits with code 1
    And stderr's last line contains "temperature must be between 0 and 2, got 9.0"
    And no queen answers on my port
    And no rbee process is left running

  Scenario: The keeper explains in one line when the queen it starts cannot run
    Given another program holds my port without speaking HTTP
    When I run rbee-keeper infer "hi"
    Then the keeper exits with code 1
    And stderr's last line contains "the queen exited (code 1) before it was healthy"
    And stderr's last line contains "cannot listen on 127.0.0.1"
    And no rbee process is left running
