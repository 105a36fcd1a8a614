Feature: SSE streaming
  GET /jobs/{job_id}/stream is a Server-Sent Events stream: every event has an id that
  increases within the job, an event type and a JSON payload; the stream ends with a plain
  "data: [DONE]". Narration and tokens arrive as they happen.

  Background:
    Given a queen is running

  Scenario: Events carry ids, types and JSON, and the stream ends with [DONE]
    When I submit the prompt "Name the capital of France." at temperature 0
    And I read the job's stream to the end
    Then the event ids are 1, 2, 3 and so on without gaps
    And every event's type is one of narration, token, end, error
    And every event's data is a JSON object
    And every token event carries its text
    And the last event is an end event with outcome "completed"
    And the stream's last line is "data: [DONE]"
    And the stream's text is "The capital of France is Paris."

  Scenario: Narration tells each step of the job as it happens
    When I submit the prompt "Name the capital of France." at temperature 0
    And I read the job's stream to the end
    Then the stream's narration includes, in order:
      | actor           | message                                                        |
      | queen-rbee      | No hives found.                                                |
      | queen-rbee      | Adding local pc to hive catalog.                               |
      | queen-rbee      | waking up the bee hive at localhost                            |
      | queen-rbee      | first heartbeat from a bee hive is received from localhost     |
      | queen-rbee      | unknown capabilities of beehive localhost                      |
      | queen-rbee      | the bee hive at localhost has: cpu                             |
      | queen-rbee      | picked cpu on localhost for our inference job                  |
      | queen-rbee      | we're now waiting for the worker bee to wake up                |
      | rbee-hive       | there is room in cpu for smollm2-135m                          |
      | rbee-hive       | waking up the worker                                           |
      | llm-worker-rbee | loading smollm2-135m                                           |
      | queen-rbee      | the worker bee is awake                                        |
      | queen-rbee      | we've sent the prompt to the worker                            |
      | queen-rbee      | connection to the worker, starting inference                   |
      | queen-rbee      | the worker has finished with the inference                     |

  Scenario: Tokens are streamed one by one as they are generated
    When I submit the prompt "Write three sentences about bees." at temperature 0 with at most 40 tokens
    And I read the job's stream to the end
    Then the stream has more than 10 token events
    And the token events did not all arrive at once

  Scenario: A client that connects late still gets the whole job from its first event
    When I submit the prompt "Name the capital of France." at temperature 0
    And I wait until the job is "completed"
    And I read the job's stream to the end
    Then the first event's id is 1
    And the stream's text is "The capital of France is Paris."

  Scenario: A client that reconnects with Last-Event-ID gets exactly the events after it
    When I submit the prompt "Name the capital of France." at temperature 0
    And I read the job's stream to the end
    And I read the job's stream again with Last-Event-ID 5
    Then the second read starts at event 6
    And the second read is exactly the first read's events after event 5
