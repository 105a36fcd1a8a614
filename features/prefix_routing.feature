Feature: Jobs go where their prefix is cached
  A chat sends its whole history again with every turn. A llama.cpp worker's slots keep their
  last job's tokens, so a turn that lands on the worker that ran the conversation's last turn
  feeds only what is new; one that lands elsewhere pays the whole prefill again. The queen
  keeps, per worker, an index of the message blocks it served, and sends each job to the
  worker holding the longest prefix of it (unless that worker is much busier than another).
  Two hives on this machine, each pinned to its own CPU core, each with a worker of the model
  from the start; whether a turn ran where its prefix was cached is read from its job's record
  (cached_tokens of its end event). Users pause between turns, so turns do not arrive in
  lockstep: a turn often finds its worker no less busy than the other one, where placement by
  load alone sends it away from its cache.

  Background:
    Given a queen is running with a heartbeat of 0.5 seconds
    And two hives "h1" and "h2", each pinned to its own CPU core, join the queen

  Scenario: Turns of concurrent conversations run where their history is cached
    When I run rbee-keeper worker spawn --hive h1 --model smollm2-135m
    Then the keeper exits with code 0
    When I run rbee-keeper worker spawn --hive h2 --model smollm2-135m
    Then the keeper exits with code 0
    When 4 conversations of 6 turns each run at once, every turn carrying the whole history after its user thinks up to 3 seconds
    Then the last turn of every conversation had over 1,000 prompt tokens
    And both workers served turns
    And at least 90% of the turns after the first ran where their conversation's prefix was cached
