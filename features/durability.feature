Feature: Durable at scale
  The queen's memory follows the jobs that are live, not its history: a finished job is read
  back from its record whenever it is asked for, its stream replays, and GET /jobs pages
  through any number of records. State files rbee owns that are damaged are moved aside with
  a warning, never a traceback; full disks give one clear line, never a half-written file
  that keeps them full, and never a broken job.

  Scenario: Finished jobs answer the same after a restart, and GET /jobs pages through them
    Given the plugin "markov" is installed from examples/rbee-markov
    And a queen is running
    When I run 30 markov jobs of 3 tokens to their end
    And I restart the queen
    Then pages of 7 from GET /jobs list the 30 jobs newest first, each once, then no next page
    And the first job's record is as it was before the restart
    And the first job's stream replays from its first event as before the restart
    And the first job's stream after Last-Event-ID 2 starts at event 3
    And GET /jobs?state=completed&model=markov-demo lists 30 jobs
    And GET /jobs?state=failed lists 0 jobs
    When I run rbee-keeper jobs list --limit 5
    Then the keeper exits with code 0
    And stdout has 6 lines
    And stderr shows "older jobs not shown"
    When I run rbee-keeper jobs list --all --state completed
    Then the keeper exits with code 0
    And stdout has 31 lines

  Scenario Outline: A bad page parameter is refused with the parameter's name
    Given a queen is running
    When I GET "/jobs?<query>"
    Then the response status is 400
    And the error's code is "invalid_request"
    And the error names the field "<field>"

    Examples:
      | query                  | field  |
      | limit=0                | limit  |
      | limit=1001             | limit  |
      | limit=ten              | limit  |
      | before=not-a-cursor    | before |
      | state=done             | state  |
      | colour=red             | colour |

  Scenario: A damaged job store is moved aside, and the keeper's job runs
    Given the plugin "markov" is installed from examples/rbee-markov
    And the file "state/queen-jobs.sqlite" is 100 random bytes
    And no queen is running on my port
    When I run rbee-keeper infer "the queen" --model markov-demo --temperature 0 --max-tokens 5
    Then the keeper exits with code 0
    And stdout has 5 words
    And the log "state/logs/queen-<port>.log" warns that "state/queen-jobs.sqlite" is damaged and names where it went
    And stderr shows "queen-jobs.sqlite is damaged"
    And the damaged "state/queen-jobs.sqlite" is kept, as it was, beside the fresh one
    And no rbee process is left running

  Scenario: A queen started on a damaged job store warns and serves
    Given the plugin "markov" is installed from examples/rbee-markov
    And the file "state/queen-jobs.sqlite" is 100 random bytes
    And a queen is running
    When I run rbee-keeper infer "the queen" --model markov-demo --temperature 0 --max-tokens 5
    Then the keeper exits with code 0
    And the log "queen-<port>.test.log" warns that "state/queen-jobs.sqlite" is damaged and names where it went
    When I run rbee-keeper jobs list
    Then stdout has 2 lines

  Scenario: A damaged hive catalog is moved aside and the downloaded model is learned again
    Given the model cache is fresh
    And a host on loopback serves the default model's GGUF file
    And a queen is running
    When I run rbee-keeper model download <url>
    Then the keeper exits with code 0
    When I stop the queen
    And the file "state/hive-catalog.sqlite" is overwritten with 100 random bytes
    And I start the queen again
    Then the catalog lists "<url>" from source "http" as ready
    And the host was asked for the file 1 time
    And the log "state/logs/hive-localhost.log" warns that "state/hive-catalog.sqlite" is damaged and names where it went
    And the log "state/logs/hive-localhost.log" says "re-learned 1 model(s)"

  Scenario: A download the disk has no room for is refused before it starts
    Given a host on loopback serves the default model's GGUF file
    And the model cache is on a 50 MB file system
    And a queen is running
    When I run rbee-keeper model download <url>
    Then the keeper exits with code 1
    And stderr's last line contains "cannot download SmolLM2-135M-Instruct.Q4_1.gguf: needs 98.4 MB, 52.4 MB free at"
    And stderr's last line contains "free space or set RBEE_MODELS_DIR"
    And the catalog is empty
    And no downloaded model file is left

  Scenario: A download that runs out of room midway says so and removes its partial
    Given a host on loopback serves the default model's GGUF file
    And the model cache is fresh
    And a queen is running under a file-size limit of 50 MB
    When I run rbee-keeper model download <url>
    Then the keeper exits with code 1
    And stderr's last line contains "cannot download SmolLM2-135M-Instruct.Q4_1.gguf: stopped after 50.0 MB of 98.4 MB"
    And stderr's last line contains "a file-size limit stopped the write at"
    And no downloaded model file is left
    And the catalog is empty

  Scenario: A job record that cannot be written is kept, written later, and the job runs whole
    Given the plugin "markov" is installed from examples/rbee-markov
    And the state dir is on a 20 MB file system
    And a queen is running
    When I run rbee-keeper infer "the queen" --model markov-demo --temperature 0 --max-tokens 5
    Then the keeper exits with code 0
    When the state dir's file system is full
    And I run rbee-keeper infer "the queen" --model markov-demo --temperature 0 --max-tokens 8
    Then the keeper exits with code 0
    And stdout has 8 words
    And the log "queen-<port>.test.log" says "cannot write job"
    When I free the state dir's file system
    Then the log "queen-<port>.test.log" says "job records are written to" within 10 seconds
    When I restart the queen
    Then GET /jobs?state=completed&model=markov-demo lists 2 jobs
