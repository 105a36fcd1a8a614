Feature: Backpressure, deadlines and faults
  The queue per model is bounded: when it is full, POST /jobs answers 429 at once with
  Retry-After and a reason. A job can carry a deadline. A worker that dies mid-job ends the
  job with an error naming it, and the next job gets a new worker.

  Scenario: A full queue refuses at once with 429, Retry-After and a reason
    Given a queen is running with --max-queue 2
    When I submit 3 long jobs at once
    Then the first 2 are accepted and the last is refused with 429 and Retry-After

  Scenario: A job past its deadline fails with a clear error and frees the worker
    Given a queen is running
    When I submit a long job with a timeout of 8 seconds
    Then the job becomes "failed" within 60 seconds
    And the job's error code is "deadline_exceeded"
    And the job's error names "did not finish within its 8 s deadline"
    And the worker answers the next job at once

  Scenario: A worker killed mid-job ends the job with an error naming it, and is replaced
    Given a queen is running
    When I submit a long job
    And the job is streaming tokens
    And the worker serving the job is killed with SIGKILL
    Then the job becomes "failed" within 10 seconds
    And the job's error names "worker-"
    When I submit the prompt "What is the capital of France?" at temperature 0
    And I read the job's stream to the end
    Then the stream's text is "The capital of France is Paris."
    And the stream's narration includes "waking up the worker"
