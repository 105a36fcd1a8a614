Feature: Resume, detach and attach
  A client may leave and come back: every event has an id, a reconnect with Last-Event-ID
  gets exactly the events after it, and the keeper reconnects by itself.

  Scenario: The keeper reconnects by itself when the connection drops mid-job
    Given a queen is running
    And the keeper reaches the queen through a connection I can cut
    When I run rbee-keeper infer "Write three sentences about bees." through it and cut the connection after 5 tokens
    Then the keeper exits with code 0
    And stderr shows, in order:
      | text                                |
      | reconnecting (1 of 5)               |
      | the worker has finished             |
    And stdout is the job's whole answer, once

  Scenario: A detached job keeps running, and can be attached to later
    Given a queen is running
    When I run rbee-keeper and remember the job id it prints: infer "Name the capital of France." --temperature 0 --detach
    Then stdout contains "job-"
    And stderr shows, in order:
      | text                        |
      | detached; follow it with: rbee-keeper jobs attach job- |
    When I run rbee-keeper jobs attach with that id
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"

  Scenario: A client that drops the stream does not cancel the job
    Given a queen is running
    When I submit the prompt "Write three sentences about bees." at temperature 0 with at most 40 tokens
    And I open the job's stream and leave after 3 events
    Then the job becomes "completed" within 120 seconds

  Scenario: A job nobody listens to any more is cancelled after the orphan timeout
    Given a queen is running with --orphan-timeout 1
    When I submit a long job
    And the job is streaming tokens
    And I open the job's stream and leave after 3 events
    Then the job becomes "cancelled" within 20 seconds
    And the stream's narration says nobody listened
