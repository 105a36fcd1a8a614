Feature: Bad input
  Every bad request gets a 4xx with a JSON body that names the problem, and the queen keeps
  serving. The keeper turns such errors into one line and a non-zero exit.

  Background:
    Given a queen is running

  Scenario Outline: A bad job request is refused with the field it got wrong
    When I POST to "/jobs":
      """
      <body>
      """
    Then the response status is <status>
    And the error's code is "<code>"
    And the error names the field "<field>"
    And the error's message mentions "<mention>"
    And the queen is still healthy

    Examples:
      | body                                                              | status | code            | field       | mention          |
      | {"model": "smollm2-135m"}                                         | 400    | invalid_request | prompt      | required         |
      | {"model": "smollm2-135m", "prompt": ""}                           | 400    | invalid_request | prompt      | empty            |
      | {"model": "smollm2-135m", "prompt": 42}                           | 400    | invalid_request | prompt      | string           |
      | {"prompt": "hi"}                                                  | 400    | invalid_request | model       | required         |
      | {"model": "smollm2-135m", "prompt": "hi", "max_tokens": 0}        | 400    | invalid_request | max_tokens  | between 1 and    |
      | {"model": "smollm2-135m", "prompt": "hi", "max_tokens": 100000}   | 400    | invalid_request | max_tokens  | between 1 and    |
      | {"model": "smollm2-135m", "prompt": "hi", "max_tokens": "ten"}    | 400    | invalid_request | max_tokens  | integer          |
      | {"model": "smollm2-135m", "prompt": "hi", "temperature": 3.5}     | 400    | invalid_request | temperature | between 0 and 2  |
      | {"model": "smollm2-135m", "prompt": "hi", "temperature": -1}      | 400    | invalid_request | temperature | between 0 and 2  |
      | {"model": "smollm2-135m", "prompt": "hi", "temperature": "hot"}   | 400    | invalid_request | temperature | number           |
      | {"model": "smollm2-135m", "prompt": "hi", "top_p": 0}             | 400    | invalid_request | top_p       | greater than 0   |
      | {"model": "smollm2-135m", "prompt": "hi", "stop": [1]}            | 400    | invalid_request | stop        | string           |
      | {"model": "smollm2-135m", "prompt": "hi", "max_token": 5}         | 400    | invalid_request | max_token   | unknown field    |
      | {"model": "gpt-17", "prompt": "hi"}                               | 404    | unknown_model   | model       | smollm2-135m     |
      | {"model": "ftp:somewhere", "prompt": "hi"}                        | 400    | invalid_request | model       | scheme           |
      | {"model": "file:/no/such/model.gguf", "prompt": "hi"}             | 400    | invalid_request | model       | does not exist   |

  Scenario: A body that is not JSON is refused
    When I POST to "/jobs":
      """
      {"model": "smollm2-135m", "prompt": "hi",
      """
    Then the response status is 400
    And the error's code is "invalid_request"
    And the error's message mentions "not valid JSON"
    And the queen is still healthy

  Scenario: A body that is JSON but not an object is refused
    When I POST to "/jobs":
      """
      ["smollm2-135m", "hi"]
      """
    Then the response status is 400
    And the error's message mentions "JSON object"

  Scenario Outline: An unknown job id is a 404 that names it
    When I GET "<path>"
    Then the response status is 404
    And the error's code is "unknown_job"
    And the error's message mentions "job-nope"

    Examples:
      | path               |
      | /jobs/job-nope     |
      | /jobs/job-nope/stream |

  Scenario: The keeper reports an unknown model in one line and exits non-zero
    When I run rbee-keeper infer "hi" --model gpt-17
    Then the keeper exits with code 1
    And stderr's last line contains "Error: unknown model 'gpt-17'; known models:"
    And stderr's last line contains "smollm2-135m"
    And stdout is empty
    And the queen still answers on my port
