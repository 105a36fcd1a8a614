Feature: Cancellation
  A job can be cancelled at any time: its worker stops generating within one token, the
  stream ends with a cancelled outcome and [DONE], and the worker is free for the next job.

  Background:
    Given a queen is running

  Scenario: DELETE /jobs/{id} stops a running job and frees its worker
    When I submit a long job
    And the job is streaming tokens
    And I cancel the job with DELETE
    Then the response status is 200
    And the job is "cancelled"
    And the job's stream ends with an end event of outcome "cancelled" and [DONE]
    And the worker answers the next job at once

  Scenario: rbee-keeper jobs cancel
    When I submit a long job
    And the job is streaming tokens
    And I run rbee-keeper jobs cancel with that job
    Then the keeper exits with code 0
    And stdout contains ": cancelled"
    And the job is "cancelled"

  Scenario: Ctrl-C in rbee-keeper infer cancels its job
    When I interrupt the keeper with Ctrl-C once tokens flow
    Then the keeper exits with code 1
    And stderr shows, in order:
      | text                 |
      | cancelling job job-  |
    And the job becomes "cancelled" within 10 seconds
    And the worker answers the next job at once

  Scenario: Cancelling one of two running jobs does not disturb the other
    When I submit a long job
    And the job is streaming tokens
    And I remember the job as the running one
    And I submit a long job
    And the job is streaming tokens
    And I cancel the job with DELETE
    Then the job is "cancelled"
    And the running job is still "running"

  Scenario: Cancelling a finished job changes nothing
    When I submit the prompt "Name the capital of France." at temperature 0
    And I read the job's stream to the end
    And I cancel the job with DELETE
    Then the response status is 200
    And the job is "completed"
