Feature: Job submission
  A client submits an inference job to the queen with POST /jobs and gets back the job's id
  and the URL of its event stream, exactly as in the seed handoff. The job runs on a real
  worker with the real default model.

  Background:
    Given a queen is running

  Scenario: POST /jobs answers a job id and the URL of its stream
    When I POST to "/jobs":
      """
      {"model": "smollm2-135m", "prompt": "hello", "max_tokens": 20, "temperature": 0.7}
      """
    Then the response status is 201
    And the response's job_id starts with "job-"
    And the response's sse_url is the job's stream URL

  Scenario: The job's record shows its state and its answer
    When I submit the prompt "Name the capital of France." at temperature 0
    And I read the job's stream to the end
    And I GET the job's record
    Then the response status is 200
    And the record's state is "completed"
    And the record's text is "The capital of France is Paris."
    And the record's result has finish_reason "stop"
    And the record's result counts more than 0 completion tokens

  Scenario: Several jobs at once each get their own stream
    When I submit these prompts at temperature 0 without waiting:
      | prompt                         |
      | Name the capital of France. |
      | Name one colour of the sky.    |
      | Say hello in French.           |
    And I read all their streams at the same time
    Then every stream ends with an end event followed by [DONE]
    And the text of the stream for "Name the capital of France." is "The capital of France is Paris."
    And the text of every stream equals its job's recorded text

  Scenario: A worker stays loaded for the next job on the same model
    When I submit the prompt "Name the capital of France." at temperature 0
    And I read the job's stream to the end
    And I submit the prompt "Name the capital of France." at temperature 0
    And I read the job's stream to the end
    Then the stream's narration includes "already has smollm2-135m loaded"
    And the stream's narration does not include "waking up the worker"
    And the stream's text is "The capital of France is Paris."
