Feature: One model across machines
  A model too large for any one hive runs split across several: its worker on one hive holds
  the first layers, and each other hive serves the rest from a part (llama.cpp's RPC server,
  behind a guard that lets through only the worker holding the part's token). The queen
  splits a model by itself when the hive it chose says the model can never fit there, or
  when a job names the hives (--split). Here this machine's hive and the second machine's
  (a network namespace reached through ssh) are each limited below the default model's
  footprint with a KV cache of 2,048 tokens (251 MB on llama.cpp), and have room for it
  together. This machine's hive listens on loopback only, where no other machine reaches a
  part: so it runs the worker, though the second machine has more room.

  Background:
    Given a second machine reached through ssh as "rbee-remote"
    And every program's KV cache is "2048 tokens" for 4 jobs at once
    And a queen with the API key "k-split" and a heartbeat of 0.5 seconds listens on this machine's address towards it
    And hive "alpha" joins the queen with "--cpu-memory-limit 200MB --heartbeat 0.5"
    And hive "rbee-remote" on the second machine joins the queen with "--cpu-memory-limit 240MB --heartbeat 0.5"

  Scenario: A model neither hive can hold answers split across both, the same answer as whole; stopping its worker frees the second machine
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"
    And stderr shows "no machine has room for model smollm2-135m"
    And stderr shows "splitting it: "
    And stderr shows "layers on hive rbee-remote"
    And a part of the model runs on the second machine, holding more than 80 MB
    And hive "rbee-remote" lists the part for a worker on hive "alpha"
    And the worker on hive "alpha" holds the rest of the model
    When I run rbee-keeper worker list
    Then stdout contains "layers on hive rbee-remote"
    When I run rbee-keeper hive list
    Then stdout contains "layers of smollm2-135m for the worker on hive alpha"
    When I open the console
    And I enter the API key "k-split"
    Then the cluster page shows, on hive "rbee-remote", "layers of smollm2-135m for the worker on hive alpha"
    And the cluster page shows, on hive "alpha", "layers on hive rbee-remote"
    When I stop the split worker
    Then the keeper exits with code 0
    And no part runs on the second machine within 30 seconds

  Scenario: The part's port lets in only its worker: a caller without the token gets nothing of llama.cpp
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    And a part of the model runs on the second machine, holding more than 80 MB
    And hive "rbee-remote" lists the part for a worker on hive "alpha"
    When I connect to the part's port and answer its challenge with a wrong token
    Then the part closes the connection having sent only its greeting and challenge
    When I connect to the part's port and send llama.cpp's RPC hello at once
    Then the part closes the connection having sent only its greeting and challenge
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"

  Scenario: Cutting the link to the part's machine mid-answer fails the job naming that hive, and nothing is left behind
    When I submit a long greedy job of 400 tokens and follow its stream
    And the job has streamed 10 tokens
    And the link to the second machine is cut
    Then the stream I follow ends with an error "hive_unreachable" within 60 seconds
    And the error names "hive rbee-remote" and "part of the model"
    And the error names "the job cannot move" and "can never have more than 200.0 MB free"
    And no part runs on the second machine within 30 seconds

  Scenario: Only llama.cpp splits a model: a split job on torch is refused, naming the backend that can
    When I run rbee-keeper infer "Hi" --split alpha,rbee-remote --backend torch
    Then the keeper exits with code 1
    And stderr's last line contains "the torch backend cannot split a model across hives; llama.cpp can"
