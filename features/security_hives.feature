Feature: Security: a hive is who it says, and what peers send is capped
  Every process of a cluster holds the same API key, so the key alone cannot tell one hive
  from another. A hive's name is bound to the URL it registered from and to a secret the
  queen issued it then; heartbeats without that secret are refused, and a URL is taken as a
  hive only once the hive there proves it holds the nonce of that registration. A worker's
  heartbeats carry the token its hive gave it. Lists and strings a peer reports are capped.
  The attacker here holds the API key, but none of these secrets.

  Background:
    Given the cluster's API key is "hive-key"
    And a queen is running with a heartbeat of 0.5 seconds

  Scenario: A forged heartbeat for a live hive, with the API key but without its secret, is refused and changes nothing
    Given a hive "alpha" joins the queen
    When a key holder sends a heartbeat for hive "alpha" from its own URL listing the model "stolen" and a worker at http://127.0.0.1:9
    Then the response status is 403
    And the error's code is "hive_identity"
    When a key holder sends the same heartbeat with the made-up secret "guess"
    Then the response status is 403
    And the error's code is "hive_identity"
    And hive "alpha" keeps its URL, models and workers, and is ready
    And the queen lists no worker at http://127.0.0.1:9

  Scenario: A key holder cannot register again from a live hive's own URL to take its secret
    Given a hive "alpha" joins the queen
    When a key holder registers a hive named "alpha" from hive "alpha"'s URL
    Then the response status is 403
    And the error's code is "hive_identity"
    When a key holder registers a hive named "impostor" from hive "alpha"'s URL
    Then the response status is 403
    And the error's code is "hive_identity"
    And the error's message mentions "hive 'alpha' answers there"
    And hive "alpha" keeps its URL, models and workers, and is ready
    And the queen lists no hive "impostor"

  Scenario: A hive's name stays bound to its URL: another hive under that name is refused while it lives and after it dies
    Given a hive "alpha" joins the queen
    When another rbee-hive named "alpha" tries to join the queen from its own port
    Then it exits with code 1
    And its stderr contains "already registered from"
    When hive "alpha" is killed with SIGKILL
    Then hive "alpha" becomes unreachable within 5 seconds
    When another rbee-hive named "alpha" tries to join the queen from its own port
    Then it exits with code 1
    And its stderr contains "its name stays bound to that URL"
    And hive "alpha" is still registered from its first URL

  Scenario Outline: A registration naming the queen's own URL is refused before anything is dialled
    When a key holder registers a hive named "evil" from the queen's own URL as <host>
    Then the response status is 400
    And the error's code is "invalid_request"
    And the error names the field "url"
    And the error's message mentions "is the queen's own address"
    And the queen lists no hive "evil"

    Examples:
      | host      |
      | 127.0.0.1 |
      | localhost |

  Scenario: A forged worker heartbeat to a hive is refused, and the worker's own heartbeats still count
    Given a hive "alpha" joins the queen
    When I run rbee-keeper worker spawn --hive alpha --model smollm2-135m
    Then the keeper exits with code 0
    When a key holder sends hive "alpha" a heartbeat for its worker saying it served 999 jobs
    Then the response status is 403
    And the error's code is "worker_identity"
    And hive "alpha" reports its worker served 0 jobs
    And hive "alpha" still runs its worker after 8 seconds of its own heartbeats

  Scenario: An oversized heartbeat models list, a too long model name, a bad hive name are refused naming the field and the cap
    Given a hive "alpha" joins the queen
    When a key holder sends a heartbeat for hive "alpha" from its own URL listing 1001 models
    Then the response status is 400
    And the error's code is "invalid_request"
    And the error names the field "models"
    And the error's message mentions "at most 1,000 items, got 1,001"
    When a key holder sends a heartbeat for hive "alpha" from its own URL listing a model name of 513 characters
    Then the response status is 400
    And the error names the field "models"
    And the error's message mentions "at most 512 characters"
    When a key holder registers a hive named "a/../b" from hive "alpha"'s URL
    Then the response status is 400
    And the error names the field "name"
    And the error's message mentions "1 to 64 letters, digits"
    And hive "alpha" keeps its URL, models and workers, and is ready
