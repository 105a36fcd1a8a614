Feature: Memory on each device is managed
  A hive holds as many workers as fit, and no more. When a job's model does not fit, the
  hive unloads idle workers, least recently used first, and says so in the job's stream;
  a busy worker is waited for, never unloaded; a pinned one (keep-alive -1) stays; a model
  that could never fit fails at once, naming both sizes.

  The hive here has 500 MB for its CPU workers: one llama.cpp worker of the default model
  fits (581 MB with its default KV cache, which the hive cuts to fit), a second does not,
  even with its cache cut to the least (about 250 MB). The second model is the same GGUF file under another name (file:), so
  both load in a second.

  Background:
    Given a queen is running
    And the default model's GGUF file is also at "<home>/second.gguf"

  Scenario: A job for another model unloads the idle worker, says so, and answers
    Given hive "alpha" joins the queen with "--cpu-memory-limit 500MB"
    And I watch the worker processes of hive "alpha"
    When I run a job for "smollm2-135m" on hive "alpha" and read its stream
    Then the stream's text is "The capital of France is Paris."
    When I run a job for "file:<home>/second.gguf" on hive "alpha" and read its stream
    Then the stream's narration includes, in order:
      | actor     | message                                  |
      | rbee-hive | unloading smollm2-135m (worker-          |
      | rbee-hive | there is room in cpu for file:           |
    And the stream's text is "The capital of France is Paris."
    And hive "alpha" runs one worker, for "file:<home>/second.gguf"
    And hive "alpha" never ran two workers at once

  Scenario: A busy worker is waited for, then unloaded, and both jobs complete
    Given hive "alpha" joins the queen with "--cpu-memory-limit 500MB"
    And I watch the worker processes of hive "alpha"
    When I start a long job for "smollm2-135m" on hive "alpha" and it is streaming tokens
    And I run a job for "file:<home>/second.gguf" on hive "alpha" and read its stream
    Then the stream's narration includes, in order:
      | actor     | message                                     |
      | rbee-hive | waiting for room: worker-                   |
      | rbee-hive | unloading smollm2-135m (worker-             |
      | rbee-hive | there is room in cpu for file:              |
    And the stream's narration includes "(smollm2-135m on llamacpp, "
    And the stream's narration includes " MB, busy) is busy; file:"
    And the stream's narration includes "to make room for file:"
    And the stream's text is "The capital of France is Paris."
    And the long job completed before the second job's worker started
    And hive "alpha" never ran two workers at once

  Scenario: A pinned worker is never unloaded: another model that cannot fit beside it fails at once
    Given hive "alpha" joins the queen with "--cpu-memory-limit 500MB --keep-alive 1"
    When I run a job for "smollm2-135m" on hive "alpha" with keep_alive -1 and read its stream
    Then the stream's text is "The capital of France is Paris."
    When I wait 4 seconds
    Then hive "alpha" runs one worker, for "smollm2-135m"
    When I run a job for "file:<home>/second.gguf" on hive "alpha" and read its stream
    Then the job failed within 10 seconds with "device_too_small"
    And the job's error says "file:<home>/second.gguf on llamacpp needs at least 250.4 MB on cpu, but hive alpha can never have more than"
    And the job's error says "free there (its --cpu-memory-limit is 500.0 MB); pinned workers (keep-alive -1) hold"
    And the job's error says "(smollm2-135m on llamacpp, "
    And hive "alpha" runs one worker, for "smollm2-135m"

  Scenario: A model that could never fit fails at once, naming both sizes
    Given hive "alpha" joins the queen with "--cpu-memory-limit 500MB"
    When I run a job for "smollm2-135m" on hive "alpha" with backend torch and read its stream
    Then the job failed within 10 seconds with "device_too_small"
    And the job's error says "smollm2-135m on torch needs at least"
    And the job's error says "on cpu, but hive alpha can never have more than 500.0 MB free there (its --cpu-memory-limit is 500.0 MB)"
