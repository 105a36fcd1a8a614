Feature: Backpressure and deadlines
  The queue per model is bounded: when it is full, POST /jobs answers 429 at once with
  Retry-After and a reason. A job can carry a deadline.

  Scenario: A full queue refuses at once with 429, Retry-After and a reason
    Given a queen is running with --max-queue 2
    When I submit 3 long jobs at once
    Then the first 2 are accepted and the last is refused with 429 and Retry-After

  Scenario: A job past its deadline fails with a clear error and frees the worker
    Given a queen is running
    # The worker is loaded first, so the deadline falls in the middle of the answer, not
    # while a busy machine is still loading the model.
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    When I submit a long job with a timeout of 8 seconds
    Then the job becomes "failed" within 60 seconds
    And the job's error code is "deadline_exceeded"
    And the job's error names "did not finish within its 8 s deadline"
    And the worker answers the next job at once
