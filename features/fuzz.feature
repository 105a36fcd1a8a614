Feature: The HTTP API survives fuzzing
  schemathesis generates requests from the queen's own OpenAPI schema (valid, invalid and
  malformed) against a live queen: no answer may be a server error, and the queen stays up.
  The queen runs with --max-queue 0, so a valid job is refused with 429 after every check
  rather than started. Left out: routes that stop the queen, start hives or workers, or make
  it call addresses the fuzzer invents (hive registration, downloads): no test traffic may
  leave this machine.

  Scenario: Fuzzing the queen's API finds no server error
    Given a queen is running with --max-queue 0
    When schemathesis fuzzes the queen's API from its OpenAPI schema for 60 seconds
    Then schemathesis found no server error
    And the queen is still healthy

  Scenario: Fuzzing a keyed queen's API with the key finds no server error
    Given the cluster's API key is "fuzz-key"
    And a queen is running with --max-queue 0
    When schemathesis fuzzes the queen's API from its OpenAPI schema for 60 seconds
    Then schemathesis found no server error
    And the queen is still healthy
