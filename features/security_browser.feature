Feature: Security: browsers cannot forge requests, public routes are bounded
  A web page the user visits can make the browser send a "simple" request to any address,
  without asking first: a form post (urlencoded, multipart or text/plain) or a fetch in
  no-cors mode, carrying the page's Origin. On every route that changes state, of the queen,
  a hive or a worker, keyed or not, such a request is refused before it reaches the route:
  403 cross_origin for an Origin that is not the daemon's own (or Sec-Fetch-Site cross-site
  or same-site), 415 bad_content_type for a body not declared application/json. The console,
  on the queen's own origin, keeps working (features/console.feature). Public routes keep
  nothing per request, and /health tells a caller without the key only that it is alive.

  Scenario: A web page's text/plain posts to a keyless queen are refused and change nothing
    Given a queen is running
    When a page on "https://evil.example" sends these text/plain requests to the queen:
      | request               | body                                                              |
      | POST /hives/register  | {"name": "evil", "url": "{queen}", "nonce": "0123456789abcdef0"}  |
      | POST /jobs            | {"model": "smollm2-135m", "prompt": "hi"}                         |
      | POST /models/download | {"model": "smollm2-135m"}                                         |
      | POST /shutdown        |                                                                   |
    Then every one was refused with 403 "cross_origin" naming "https://evil.example"
    And the queen lists no hive named "evil"
    And the queen has no job
    And the queen is still healthy

  Scenario Outline: A hive registration in any shape a page can send is refused: <type> with <header>
    Given a queen is running
    When a browser posts a hive registration for "evil" at the queen's URL as <type> with <header>
    Then the response status is <status>
    And the error's code is "<code>"
    And the error's message mentions "<mention>"
    And the queen lists no hive named "evil"

    Examples:
      | type                              | header                           | status | code             | mention             |
      | text/plain                        | Origin: https://evil.example     | 403    | cross_origin     | https://evil.example |
      | application/x-www-form-urlencoded | Origin: https://evil.example     | 403    | cross_origin     | https://evil.example |
      | multipart/form-data               | Origin: null                     | 403    | cross_origin     | 'null'              |
      | application/json                  | Origin: http://127.0.0.1:9       | 403    | cross_origin     | http://127.0.0.1:9  |
      | application/json                  | Sec-Fetch-Site: cross-site       | 403    | cross_origin     | cross-site          |
      | text/plain                        | no other header                  | 415    | bad_content_type | text/plain          |
      | no content type                   | no other header                  | 415    | bad_content_type | application/json    |

  Scenario: A web page cannot drive the queen's hive or its worker either
    Given a queen is running
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    When a page on "https://evil.example" sends these text/plain requests to the local hive:
      | request                    | body                        |
      | POST /models/download      | {"model": "smollm2-135m"}   |
      | POST /workers              | {"model": "smollm2-135m"}   |
      | DELETE /workers/{worker}   |                             |
      | POST /shutdown             |                             |
    Then every one was refused with 403 "cross_origin" naming "https://evil.example"
    When a page on "https://evil.example" sends these text/plain requests to the worker:
      | request         | body                                        |
      | POST /generate  | {"model": "smollm2-135m", "prompt": "hi"}   |
      | POST /retire    | {"min_idle": 0}                             |
      | POST /shutdown  |                                             |
    Then every one was refused with 403 "cross_origin" naming "https://evil.example"
    And the local hive still runs its worker, which is not retired
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"

  Scenario: 2,000 requests for unknown console files on a keyed queen are 404s that leave no trace
    Given the cluster's API key is "s3cret"
    And a queen is running
    When I request 2000 console files with unknown names of 15 KB each
    Then every one was answered 404 "not_found" with a short message
    And the queen's resident memory grew by less than 5 MB
    And the queen is still healthy

  Scenario: /health without the key tells only that the queen, its hive and its worker are alive
    Given the cluster's API key is "s3cret"
    And a queen is running
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    And /health of the queen, the local hive and the worker answers only {"status": "ok"} without the key
    And /health of the queen, the local hive and the worker answers their details with the key
