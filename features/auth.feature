Feature: Security and graceful shutdown
  With an API key, every route but /health needs "Authorization: Bearer <key>", and the
  queen, its hives and workers use the same key among themselves. A daemon on loopback
  answers loopback Host names only. Bodies are bounded. SIGTERM lets running jobs finish
  within a grace period, then ends the rest with a clear reason.

  Scenario: With an API key, every route but /health needs it, and jobs still run end to end
    Given the cluster's API key is "s3cret"
    And a queen is running
    When I GET "/health"
    Then the response status is 200
    When I GET "/jobs"
    Then the response status is 401
    And the error's code is "unauthorized"
    When I GET "/jobs" with the API key "wrong"
    Then the response status is 401
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"
    And the local hive refuses a call without the key
    And the worker refuses a call without the key

  Scenario: A queen refuses to listen beyond loopback without an API key
    When I run queen-rbee with --host 0.0.0.0
    Then it exits with code 2
    And its stderr contains "refusing to listen on 0.0.0.0 without an API key"

  Scenario: Hives and workers refuse to listen beyond loopback without an API key, as the queen does
    When I run rbee-hive with --host 0.0.0.0 --port 0
    Then it exits with code 2
    And its stderr contains "rbee-hive: refusing to listen on 0.0.0.0 without an API key: anyone who can reach it could run jobs. Set RBEE_API_KEY."
    When I run llm-worker-rbee with --host 0.0.0.0 --model smollm2-135m
    Then it exits with code 2
    And its stderr contains "llm-worker-rbee: refusing to listen on 0.0.0.0 without an API key"

  Scenario: A request for another Host is refused, against DNS rebinding
    Given a queen is running
    When I GET "/jobs" with the Host header "rebind.example:8500"
    Then the response status is 403
    And the error's code is "bad_host"
    And the queen is still healthy

  Scenario: An oversized body is refused with 413
    Given a queen is running
    When I POST a job whose prompt is 2000000 characters long
    Then the response status is 413
    And the queen is still healthy

  Scenario: SIGTERM lets a running job finish, then the queen stops everything it started
    Given a queen is running
    When I submit the prompt "Write three sentences about bees." at temperature 0 with at most 40 tokens
    And I follow the job's stream in the background
    And the job is streaming tokens
    And the queen receives SIGTERM
    Then the followed stream ends with an end event of outcome "completed"
    And the queen exits within 60 seconds
    And no rbee process is left running

  Scenario: A job longer than the grace period ends with a clear reason, kept in its record
    Given a queen is running with --shutdown-grace 1
    When I submit a long job
    And the job is streaming tokens
    And the queen receives SIGTERM
    Then the queen exits within 60 seconds
    When I start the queen again
    Then the job is "failed"
    And the job's error names "the queen shut down before the job finished"
