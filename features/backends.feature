Feature: Inference backends
  GGUF files run on llama.cpp in their own quantisation when it is installed (the
  llamacpp extra); safetensors run on torch, in bf16 where the hardware does bf16 natively.
  --backend picks one for a job, for infer and for worker spawn; narration and worker list
  say which backend and quantisation a worker runs. Both keep the same contract: seeds,
  stop strings, cancel, whole characters (features/batching.feature runs on both).

  Scenario: A GGUF model runs on llama.cpp in its own quantisation, and worker list says so
    Given a queen is running
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"
    And stderr shows, in order:
      | text                                                              |
      | there is room in cpu for smollm2-135m on llamacpp: it needs       |
      | loading smollm2-135m on cpu with llama.cpp (Q4_1                  |
      | the worker bee is awake                                           |
    When I run rbee-keeper worker list
    Then stdout contains "llamacpp Q4_1"

  Scenario: --backend torch starts a torch worker beside the llama.cpp one
    Given a queen is running
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    And I run rbee-keeper infer "Name the capital of France." --temperature 0 --backend torch
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"
    And stderr shows, in order:
      | text                                                   |
      | there is room in cpu for smollm2-135m on torch         |
      | loading smollm2-135m on cpu in                         |
    And stderr does not show "already has smollm2-135m loaded"
    When I run rbee-keeper worker list
    Then stdout contains "llamacpp Q4_1"
    And stdout contains " torch "

  Scenario: worker spawn --backend starts a worker of that backend
    Given a queen is running
    When I run rbee-keeper worker spawn --model smollm2-135m --backend torch
    Then the keeper exits with code 0
    And stdout contains "serves smollm2-135m on cpu of hive localhost with torch"

  Scenario: An unknown backend is a clear error that names the installed ones
    Given a queen is running
    When I run rbee-keeper infer "hi" --backend nope
    Then the keeper exits with code 1
    And stderr's last line contains "no backend 'nope' (it has llamacpp, "
    When I run rbee-keeper worker spawn --model smollm2-135m --backend nope
    Then the keeper exits with code 1
    And stderr's last line contains "has no backend 'nope'; installed: llamacpp, "
    And the queen is still healthy

  Scenario: hive list says where each backend runs, and a GPU this llama.cpp build cannot use is refused with how to build it
    Given a queen is running
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    And I run rbee-keeper hive list
    Then stdout contains "  backends: llamacpp (cpu), "
    And stdout contains "torch (cpu)"
    When I run llm-worker-rbee with --model smollm2-135m --backend llamacpp --device cuda:0
    Then it exits with code 1
    And stdout contains "the installed llama.cpp was built without GPU support, so it cannot use cuda:0; rebuild it with GPU support (CMAKE_ARGS="
    And stdout contains "or use --backend torch"

  Scenario: A q8_0 KV cache holds the same slots in about half the memory, and the room check counts it
    Given workers run on the llamacpp backend with a q8_0 KV cache
    And a queen is running
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"
    And stderr shows, in order:
      | text                                                        |
      | KV cache 200.5 MB for 16,384 tokens                         |
      | 8 jobs at once of up to 2,048 tokens each, a q8_0 KV cache  |
    And the llamacpp worker holds less than 320 MiB resident

  Scenario: A llama.cpp worker holds the cache its jobs wrote, while the room check counts all it can grow to
    llama.cpp clears the whole KV cache when the model loads; the worker gives those zeroed
    pages back (rbee_llamacpp/resident_pages.py), and a page returns when a job writes there.

    Given workers run on the llamacpp backend
    And a queen is running
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"
    And stderr shows, in order:
      | text                                |
      | KV cache 377.5 MB for 16,384 tokens |
    And the llamacpp worker holds less than 250 MiB resident

  Scenario Outline: A seeded answer repeats, and a stop string ends the answer before it (<backend>)
    Given a queen is running
    When I run rbee-keeper infer "Write a poem about the sea." --temperature 1 --seed 5 --max-tokens 24 --backend <backend>
    Then the keeper exits with code 0
    When I run the same command again
    Then stdout is the same as the first time
    When I run rbee-keeper infer "Name the capital of France." --temperature 0 --stop "is Par" --backend <backend>
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France \n"
    And stderr shows, in order:
      | text                          |
      | finish reason stop            |

    Examples:
      | backend  |
      | llamacpp |
      | torch    |
