Feature: Hives across machines
  Several machines are simulated on this box: each hive runs on its own loopback port with
  its own state dir and model dir, and joins the queen like a hive on another machine would.
  Heartbeats every half second, so a silent hive is noticed within a couple of seconds.

  Background:
    Given a queen is running with a heartbeat of 0.5 seconds

  Scenario: Two hives join, and hive list shows both with their devices
    Given a hive "alpha" joins the queen
    And a hive "beta" joins the queen
    When I run rbee-keeper hive list
    Then the keeper exits with code 0
    And hive list shows "alpha" as ready with its devices
    And hive list shows "beta" as ready with its devices

  Scenario: A job pinned to each hive runs there
    Given a hive "alpha" joins the queen
    And a hive "beta" joins the queen
    When I run rbee-keeper infer "Name the capital of France." --temperature 0 --hive alpha
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"
    And stderr shows, in order:
      | text                                     |
      | picked cpu on alpha                      |
      | on cpu of hive alpha                     |
    And hive "alpha" runs a worker for "smollm2-135m"
    When I run rbee-keeper infer "Name the capital of France." --temperature 0 --hive beta
    Then the keeper exits with code 0
    And stderr shows, in order:
      | text               |
      | picked cpu on beta |
    And hive "beta" runs a worker for "smollm2-135m"
    When I run rbee-keeper worker list
    Then stdout contains "alpha"
    And stdout contains "beta"
    And stdout contains "smollm2-135m"

  Scenario: A hive killed with SIGKILL is marked unreachable, and later jobs go to the other
    Given a hive "alpha" joins the queen
    And a hive "beta" joins the queen
    When hive "alpha" is killed with SIGKILL
    Then hive "alpha" becomes unreachable within 5 seconds
    And no process of hive "alpha" is left running
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    And stderr shows, in order:
      | text               |
      | picked cpu on beta |
    When I run rbee-keeper infer "hi" --hive alpha
    Then the keeper exits with code 1
    And stderr's last line contains "hive alpha is unreachable; it takes no new jobs"

  Scenario: A job running on a hive that dies ends with an error naming it, never hangs
    Given a hive "alpha" joins the queen
    When I start a long job pinned to hive "alpha" and it is streaming tokens
    And hive "alpha" is killed with SIGKILL
    Then the job ends with an error event naming "alpha" within 10 seconds
    And the job's error code is "hive_unreachable"

  Scenario: Stopping a hive stops its workers
    Given a hive "alpha" joins the queen
    When I run rbee-keeper infer "Hi" --max-tokens 3 --hive alpha
    Then the keeper exits with code 0
    And hive "alpha" runs a worker for "smollm2-135m"
    When I run rbee-keeper hive stop alpha
    Then the keeper exits with code 0
    And no process of hive "alpha" is left running

  Scenario: Stopping the queen stops the hives it started, and only those
    Given a hive "beta" joins the queen
    When I run rbee-keeper infer "Hi" --max-tokens 3 --hive localhost
    Then the keeper exits with code 0
    When I run rbee-keeper queen stop
    Then the keeper exits with code 0
    And no process of hive "localhost" started by the queen is left running
    And hive "beta" is still running

  Scenario: A worker left idle past its keep-alive is stopped to free memory
    Given a hive "alpha" joins the queen
    When I run rbee-keeper infer "Hi" --max-tokens 3 --hive alpha --keep-alive 1
    Then the keeper exits with code 0
    And hive "alpha" runs no worker within 15 seconds

  Scenario: Workers can be spawned and stopped by hand
    Given a hive "alpha" joins the queen
    When I run rbee-keeper worker spawn --hive alpha --model smollm2-135m
    Then the keeper exits with code 0
    And the queen lists the worker of "smollm2-135m" on hive "alpha" at once
    And stdout contains "serves smollm2-135m on cpu of hive alpha"
    And hive "alpha" runs a worker for "smollm2-135m"
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then stderr shows, in order:
      | text                            |
      | already has smollm2-135m loaded |
    When I stop the worker of hive "alpha" with rbee-keeper
    Then hive "alpha" runs no worker within 10 seconds

  Scenario: A hive that registers under a name a live hive has is refused
    Given a hive "alpha" joins the queen
    When I register a hive named "alpha" from http://127.0.0.1:1
    Then the response status is 409
    And the error's code is "hive_conflict"
    And the error's message mentions "already registered"

  Scenario: A heartbeat from a hive that never registered is refused
    When a heartbeat comes from a hive named "ghost" that never registered
    Then the response status is 404
    And the error's code is "unknown_hive"

  Scenario: A hive's memory limit counts what each worker will hold, its KV cache included
    Given a hive "alpha" with a CPU memory limit of 1.5GB joins the queen
    When I run rbee-keeper worker spawn --hive alpha --model smollm2-135m --backend torch
    Then the keeper exits with code 0
    And stderr shows, in order:
      | text                                                                  |
      | there is room in cpu for smollm2-135m on torch                        |
      | waking up the worker                                                  |
    And stderr shows "its KV cache cut to"
    When I run rbee-keeper worker spawn --hive alpha --model smollm2-135m --backend llamacpp
    Then the keeper exits with code 1
    And stderr's last line contains "smollm2-135m on llamacpp needs 580.7 MB"
    And stderr's last line contains "but hive alpha has only"
    And hive "alpha" is in state ready

  Scenario: An unknown hive, an unknown device, a model too large: clear errors
    Given a hive "alpha" with a CPU memory limit of 100MB joins the queen
    When I run rbee-keeper infer "hi" --hive nosuch
    Then the keeper exits with code 1
    And stderr's last line contains "no hive named 'nosuch'; hives: alpha"
    When I run rbee-keeper worker spawn --hive alpha --model smollm2-135m --device cuda:7
    Then the keeper exits with code 1
    And stderr's last line contains "hive alpha has no device 'cuda:7'; its devices: cpu"
    When I run rbee-keeper worker spawn --hive alpha --model smollm2-135m
    Then the keeper exits with code 1
    And stderr's last line contains "smollm2-135m on llamacpp needs 580.7 MB (weights 98.4 MB, runtime 104.9 MB, KV cache 377.5 MB for 16,384 tokens) on cpu, but hive alpha has only 100.0 MB free there"
    And the queen is still healthy
    And hive "alpha" is in state ready
