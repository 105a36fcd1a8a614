Feature: Continuous batching
  One worker decodes all the jobs for its model together: a new job joins the running batch
  at the next step, a finished one leaves it, a cancelled one is dropped without disturbing
  the others. Each job keeps its own sampling settings and seed, so its answer is the same
  as when it runs alone. The KV cache is bounded: a job that would not fit waits its turn.
  Both built-in backends keep this contract. The torch backend keeps bitwise parity in
  fp32; in bf16 a batch's other rows may tip a near-tie (docs/architecture.md).

  Scenario Outline: Concurrent jobs run together on one worker and answer as they do alone (<engine>)
    Given workers run on the <engine>
    And a queen is running
    When I run each of these jobs alone, then all of them at once:
      | prompt                          | temperature | seed | max_tokens |
      | Name the capital of France.     | 0           |      | 24         |
      | Name three colours.             | 0           |      | 40         |
      | Write a haiku about bees.       | 0.8         | 7    | 40         |
      | Tell me a joke about computers. | 0.8         | 42   | 32         |
    Then every job answers the same text at once as alone
    And the jobs run at once were all served by one worker, at the same time

    Examples:
      | engine                                    |
      | llamacpp backend                          |
      | llamacpp backend with a q8_0 KV cache     |
      | torch backend in fp32                     |

  Scenario Outline: Cancelling one job of a batch leaves the others untouched (<engine>)
    Given workers run on the <engine>
    And a queen is running
    When I run the prompt "Name three colours." alone at temperature 0 with at most 40 tokens
    And I start 3 jobs of that prompt at once, plus a long job
    And the long job is streaming tokens
    And I cancel the long job with DELETE
    Then the long job is "cancelled"
    And the 3 jobs answer what the prompt answered alone

    Examples:
      | engine                 |
      | llamacpp backend       |
      | torch backend in fp32  |

  Scenario Outline: A job that does not fit waits for room, then runs (<engine>)
    Given workers run on the <engine>
    And workers have a KV cache of 350 tokens
    And workers run at most <jobs> jobs at once
    And a queen is running
    When I submit 2 jobs of 200 tokens at once
    Then both jobs complete with 200 tokens each
    And the second job's first token came after the first job ended
    And the second job narrated "<why>"

    # torch's jobs share one cache (2 x 210 > 350); llama.cpp gives each job a slot of its
    # own, and the queen sends a worker no more jobs than it has slots.
    Examples:
      | engine            | jobs | why                                     |
      | torch backend     | 8    | waiting for room: the KV cache is full  |
      | llamacpp backend  | 1    | the worker is busy with 1 job(s)        |

  Scenario Outline: A job that can never fit in the KV cache fails with a clear error (<engine>)
    Given workers run on the <engine>
    And workers have a KV cache of 350 tokens
    And workers run at most <jobs> jobs at once
    And a queen is running
    When I submit the prompt "Tell me about bees." at temperature 0 with at most 1000 tokens
    And I read the job's stream to the end
    Then the job is "failed"
    And the job's error code is "invalid_request"
    And the job's error names "KV cache slots; this worker's cache holds"
    And the worker answers the next job at once

    Examples:
      | engine            | jobs |
      | torch backend     | 8    |
      | llamacpp backend  | 1    |

  Scenario Outline: With a batch of one, a queued job can be cancelled without disturbing the running one (<engine>)
    Given workers run on the <engine>
    And workers run at most 1 job at once
    And a queen is running
    When I submit a long job
    And the job is streaming tokens
    And I remember the job as the running one
    And I submit a long job
    Then the job's stream narrates "the worker is busy"
    When I cancel the job with DELETE
    Then the job is "cancelled"
    And the running job is still "running"

    Examples:
      | engine            |
      | torch backend     |
      | llamacpp backend  |
