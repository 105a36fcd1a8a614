Feature: The web console
  The queen serves a console at /: the cluster (hives, devices, workers, models), the jobs
  (live, replayed, cancelled), the models (download with progress, remove), a playground and
  charts. It is plain files shipped in the package, under a strict Content-Security-Policy,
  live from one event stream (GET /events) that resumes with Last-Event-ID. With an API key
  the console asks for it and sends it as a header, never in a URL. These scenarios drive a
  real headless Chromium against the real programs and save a screenshot of each page under
  the run's output folder (RBEE_TEST_OUTPUT).

  Scenario: After a job, the console shows the local hive, its worker, the job and the charts
    Given a queen is running
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    When I open the console
    Then the cluster page shows the hive "localhost" as "ready"
    And the hive's device "cpu" has a memory bar
    And the hive has a worker of "smollm2-135m" with its resident memory
    When I go to the console's jobs page
    Then the jobs page lists the job as "completed" for "smollm2-135m"
    When I open the job from the jobs page
    Then the job view shows the state "completed"
    And the job view's output is "The capital of France is Paris."
    And the job view's narration includes "the worker has finished with the inference"
    When I go to the console's charts page
    Then the tokens chart shows output tokens/s above 0 in its history
    And the browser reported no errors

  Scenario: A playground chat streams its answers, turn after turn, with rbee's narration beside them
    Given a queen is running
    When I open the console's playground
    And I set the playground's temperature to 0
    And I send "Name the capital of France." in the playground
    Then the playground's answer contains "Paris"
    And the playground's narration includes "the worker has finished with the inference"
    When I send "Say it again." in the playground
    Then the playground shows 2 answers
    And the last job's request carried the whole conversation of 3 messages
    And the browser reported no errors

  Scenario: A running job streams in its view and is cancelled from there
    Given a queen is running
    When I submit a long job
    And the job is streaming tokens
    And I open the console at the job's view
    Then the job view's output grows as tokens arrive
    When I press the job view's cancel button
    Then the job view shows the state "cancelled"
    And the job is "cancelled"
    And the browser reported no errors

  Scenario: A model downloads with a live progress bar, and is removed
    Given a host on loopback serves the default model's GGUF file at 25 MB/s
    And a queen is running
    When I open the console's models page
    And I download "<url>#sha256=<sha256>" from the models page
    Then the download bar moves through at least 2 values below 100 and ends at 100
    And the download status says "done"
    And the models page lists "SmolLM2-135M-Instruct.Q4_1"
    When I remove "SmolLM2-135M-Instruct.Q4_1" from the models page
    Then the models page does not list "SmolLM2-135M-Instruct.Q4_1"
    And the browser reported no errors

  Scenario: With an API key, the console shows nothing until the key is entered, and never puts it in a URL
    Given the cluster's API key is "s3cret"
    And a queen is running
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    And I open the console
    Then the console asks for the API key
    And the console shows no hive and no job
    When I enter the API key "wrong"
    Then the console says the key was refused
    And the console shows no hive and no job
    When I enter the API key "s3cret"
    Then the cluster page shows the hive "localhost" as "ready"
    When I go to the console's jobs page
    Then the jobs page lists the job as "completed" for "smollm2-135m"
    And no URL the browser requested contains "s3cret"

  Scenario: Other tools follow the same event feed, and resume it with Last-Event-ID
    Given a queen is running
    When I read the event feed until its first 3 events
    Then the first event is a snapshot of the hives, the jobs and the charts' history
    When I submit the prompt "Name the capital of France." at temperature 0
    And I read the job's stream to the end
    And I read the event feed again with Last-Event-ID of its second event
    Then it starts with the third event, without a snapshot
    And it reports the job as "completed"
    When I read the event feed with Last-Event-ID 5
    Then the first event is a snapshot of the hives, the jobs and the charts' history
