Feature: Faults
  Processes die: a worker by SIGKILL mid-stream, the queen itself. No job is left hanging or
  "running": each goes on elsewhere (features/failover.feature) or, where it cannot, ends
  with an error naming what died, and the system serves the next job. (A hive that stops
  heartbeating: features/hives.feature.)

  Scenario: With retries off, a worker killed mid-job ends the job with an error naming it, and is replaced
    Given a queen is running with --max-retries 0
    When I submit a long job
    And the job is streaming tokens
    And the worker serving the job is killed with SIGKILL
    Then the job becomes "failed" within 10 seconds
    And the job's error names "worker-"
    And the job's error code is "worker_lost"
    When I submit the prompt "Name the capital of France." at temperature 0
    And I read the job's stream to the end
    Then the stream's text is "The capital of France is Paris."
    And the stream's narration includes "waking up the worker"

  Scenario: A worker that cannot load its model fails the job with worker_failed and the reason
    Given a queen is running
    And a copy of the default model's GGUF file cut short at "broken.gguf"
    When I run rbee-keeper infer "hi" --model file:<home>/broken.gguf
    Then the keeper exits with code 1
    And stderr's last line contains "the worker could not start"
    And the last job's error code is "worker_failed"
    And the queen still answers on my port

  Scenario: Job records survive a queen restart; a job the queen died with goes on, never left running
    Given a queen is running
    When I submit the prompt "Name the capital of France." at temperature 0
    And I read the job's stream to the end
    And I remember the job as the finished one
    And I submit a long job of 40 tokens
    And the job is streaming tokens
    And I restart the queen after killing it with SIGKILL
    Then the job becomes "completed" within 120 seconds
    And the finished job is still "completed" with its answer
    And the finished job's stream replays from its first event
    When I run rbee-keeper jobs list
    Then stdout contains "completed"
    And stdout does not contain "running"
