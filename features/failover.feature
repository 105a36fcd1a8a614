Feature: Nothing accepted is lost
  A job outlives the worker, the hive and the queen that ran it. A greedy or seeded job
  decodes the same tokens on any worker of the same engine (features/batching.feature), so
  when its worker is lost mid-answer the queen places it again, the new worker generates it
  from its start and sends only what the client does not have yet (checking the rest is the
  same), and the stream goes on with its next event id. A sampled job without a seed gets
  one from the queen at submission. A queen that dies places its unfinished jobs again when
  it starts; a client that reconnects with Last-Event-ID gets the rest. A drained hive's
  jobs move to other hives before it stops. A move that would change the answer (another
  backend) ends the job with an error naming both workers, never a different answer.

  Scenario: A greedy job whose worker is killed after 20 tokens streams to its end, the same answer as alone
    Given a queen is running
    When I submit a long greedy job of 90 tokens and follow its stream
    And the job has streamed 20 tokens
    And the job's worker is killed with SIGKILL
    Then the stream I follow ends with an end event within 120 seconds
    And its event ids run from 1 without a gap or a repeat
    And its narration says "the job moves to another worker after"
    And its text is the answer of the same job run alone
    And the job's record names both runs, the first lost

  Scenario: A sampled job without a seed survives its worker's death the same way
    Given a queen is running
    When I submit a sampled job of 90 tokens without a seed and follow its stream
    And the job has streamed 20 tokens
    And the job's worker is killed with SIGKILL
    Then the stream I follow ends with an end event within 120 seconds
    And its end event carries the seed the queen gave it
    And its event ids run from 1 without a gap or a repeat
    And its text is the answer of the same job run alone

  Scenario: A job whose hive dies with its workers moves to the other hive and streams to its end
    Given a queen is running
    And a hive "alpha" joins the queen
    And a hive "beta" joins the queen
    When I run rbee-keeper infer "Hi" --max-tokens 3 --hive alpha
    And I submit a long greedy job of 90 tokens and follow its stream
    And the job has streamed 20 tokens
    And hive "alpha" and its workers are killed with SIGKILL
    Then the stream I follow ends with an end event within 180 seconds
    And its event ids run from 1 without a gap or a repeat
    And its narration says "hive alpha is unreachable"
    And its narration says "picked cpu on beta"
    And its text is the answer of the same job run alone

  Scenario: The queen killed mid-answer and started again: the job goes on, and jobs attach gets the rest
    Given a queen is running
    When I submit a long greedy job of 90 tokens and follow its stream
    And the job has streamed 20 tokens
    And I restart the queen after killing it with SIGKILL
    Then the stream I follow ends with an end event within 180 seconds
    And its event ids run from 1 without a gap or a repeat
    And its narration says "the queen restarted while the job was running"
    And its text is the answer of the same job run alone
    And the log "queen-<port>.test.log" says "resumed 1 unfinished job(s)"
    When I run rbee-keeper jobs attach with the job's id
    Then the keeper exits with code 0
    And stdout is the answer of the same job run alone

  Scenario: A job that could only move to a worker of another backend fails, naming both
    Given a queen is running
    When I run rbee-keeper worker spawn --model smollm2-135m
    And I spawn a worker of the default model with the torch backend beside it
    And I submit a long greedy job of 90 tokens and follow its stream
    And the job has streamed 10 tokens
    Then the job runs on the worker with backend "llamacpp"
    When the job's worker is killed with SIGKILL
    Then the stream I follow ends with an error "answer_diverged" within 120 seconds
    And the error names "llamacpp" and "torch"

  Scenario: hive stop --drain under load: every job moves to the other hive and none is lost
    Given a queen is running
    And a hive "alpha" joins the queen
    And a hive "beta" joins the queen
    When I run rbee-keeper infer "Hi" --max-tokens 3 --hive alpha
    And I submit 3 long greedy jobs of 60 tokens and follow their streams
    And every job has streamed 5 tokens
    And I run rbee-keeper hive stop alpha --drain
    Then the keeper exits with code 0
    And every stream I follow ends with an end event within 180 seconds
    And every stream's ids run from 1 without a gap, and its text is the same job's alone
    And no process of hive "alpha" is left running

  Scenario: A hive sent SIGTERM under load has its jobs moved first
    Given a queen is running
    And a hive "alpha" joins the queen
    And a hive "beta" joins the queen
    When I run rbee-keeper infer "Hi" --max-tokens 3 --hive alpha
    And I submit 2 long greedy jobs of 60 tokens and follow their streams
    And every job has streamed 5 tokens
    And hive "alpha" is sent SIGTERM
    Then every stream I follow ends with an end event within 180 seconds
    And every stream's ids run from 1 without a gap, and its text is the same job's alone
    And no process of hive "alpha" is left running
