Feature: rbee on a Ray cluster
  With `queen-rbee --ray ADDRESS` the queen keeps one rbee-hive on every alive Ray node, as a
  Ray actor pinned to that node, and each such hive starts its workers as Ray actors that
  reserve the CPUs and memory they use, so Ray accounts rbee's share. A node that joins gets
  a hive; a node that dies takes its hive out through the usual path. These scenarios run a
  real local Ray cluster (one `ray start` per node), the queen and the keeper inside a
  network namespace with only loopback up, so that Ray's traffic stays on addresses the
  scenario owns.

  Scenario: Every Ray node gets a hive, and a job runs on a worker that Ray placed and accounts
    Given a Ray cluster of 2 nodes with 1 CPU each
    And a queen runs on it with --ray
    Then within 60 seconds the queen has 2 ready hives, one per Ray node
    When on the Ray cluster I run rbee-keeper hive list
    Then stdout contains "labels:  ray_node="
    When on the Ray cluster I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"
    And stderr shows "Ray granted 1 CPU and 580.7 MB on Ray node"
    And `ray status` shows the worker's CPU and memory in use

  Scenario: A node that joins gets a hive; a node that dies takes its hive and its job with it
    Given a Ray cluster of 1 node with 1 CPU
    And a queen runs on it with --ray
    Then within 60 seconds the queen has 1 ready hive, one per Ray node
    When a second node joins the Ray cluster
    Then within 30 seconds the queen has 2 ready hives, one per Ray node
    When on the Ray cluster I submit a long job to the hive of node 2
    And the job on the Ray cluster is streaming tokens
    And node 2 dies
    Then within 20 seconds the hive of node 2 is "unreachable"
    And the job on the Ray cluster failed with an error naming the hive of node 2
    When on the Ray cluster I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"
    And stderr shows "picked cpu on" the hive of node 1

  Scenario: A worker waits, and says so, while Ray cannot grant its CPU
    Given the plugin "markov" is installed from examples/rbee-markov
    And a Ray cluster of 1 node with 1 CPU
    And a queen runs on it with --ray
    Then within 60 seconds the queen has 1 ready hive, one per Ray node
    When on the Ray cluster I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    When on the Ray cluster I start rbee-keeper infer "the queen" --model markov-demo --max-tokens 8
    Then within 30 seconds its stderr shows "waiting for Ray to grant 1 CPU"
    When on the Ray cluster I stop the worker of smollm2-135m
    Then within 60 seconds that keeper exits with code 0 and an answer
    And its stderr shows "Ray granted 1 CPU"
