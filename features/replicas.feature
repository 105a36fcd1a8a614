Feature: Replicas: one model on many machines
  A busy model gets a second worker on a hive that does not run it yet, and the jobs that
  wait for it do so in one line per model at the queen, first come, first served. Hives on
  this machine stand for machines: each pinned to its own CPU core, one thread per worker.

  Scenario: Under load a second worker starts on the other hive, both serve, and the replica goes at its keep-alive
    Given a queen is running with a heartbeat of 0.5 seconds
    And two hives "h1" and "h2", each pinned to its own CPU core, join the queen
    When I submit 16 sampled jobs of 32 tokens at once, each with a keep-alive of 3 seconds
    Then every one of the jobs completed
    And one job narrated starting a second worker of "smollm2-135m" on the hive without one
    And the jobs ran on two workers, one on each hive
    And the replica's hive runs no worker within 30 seconds

  Scenario: A model with min_replicas 1 keeps its worker past its keep-alive
    Given a queen is running with --heartbeat 0.5 --replicas smollm2-135m=1:2
    And a hive "alpha" joins the queen
    When I run a job with a keep-alive of 1 second
    Then hive "alpha" still runs the job's worker 8 seconds later

  Scenario: Jobs waiting for a model's only slot start in the order they came, each told its place
    Given workers run at most 1 job at once
    And a queen is running with --max-replicas 1
    And a hive "alpha" joins the queen
    When I submit 4 jobs of 16 tokens one after another
    Then the jobs started in the order they were submitted
    And the last job narrated "3 jobs of smollm2-135m are ahead of this one"
