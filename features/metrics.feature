Feature: Prometheus metrics
  GET /metrics on the queen serves Prometheus text: jobs by state, queue depth, time to first
  token and per-token latency, tokens generated, workers and hives.

  Scenario: The counters move with a job
    Given a queen is running
    When I scrape the queen's metrics
    And I submit the prompt "Name the capital of France." at temperature 0
    And I read the job's stream to the end
    And I scrape the queen's metrics again
    Then the metrics are served as Prometheus text
    And the metric rbee_jobs_submitted_total{model="smollm2-135m"} grew by 1
    And the metric rbee_jobs_finished_total{model="smollm2-135m",state="completed"} grew by 1
    And the metric rbee_tokens_generated_total{model="smollm2-135m"} grew by the job's completion tokens
    And the metric rbee_time_to_first_token_seconds_count{model="smollm2-135m"} grew by 1
    And the metric rbee_time_per_output_token_seconds_count{model="smollm2-135m"} grew by 1
    And the metric rbee_jobs{state="completed"} is 1
    And the metric rbee_queue_depth is 0
    And the metric rbee_workers{state="idle"} is 1
    And the metric rbee_hives{state="ready"} is 1
