Feature: Security: the API key stays off command lines, state files are private, client input is capped, the terminal shows no escape sequences
  The key comes from RBEE_API_KEY or a file only its owner reads (--api-key-file); a key on
  the command line still works but warns, and leaves the process's command line at once.
  Everything rbee keeps (job store, catalog, logs) is mode 0600 in a 0700 state dir. A job's
  messages and stop strings have caps, each refusal a 400 naming the field and the cap.
  What a peer wrote reaches the keeper's terminal without escape sequences.

  Scenario: A queen started with --api-key-file asks every caller for the key, and the keeper with the key in its environment runs a job end to end
    Given a queen is started with its API key "file-s3cret" in a file of mode 600
    When I GET "/jobs"
    Then the response status is 401
    When I GET "/jobs" with the API key "file-s3cret"
    Then the response status is 200
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"

  Scenario: An API key file that others may read is refused, as ssh refuses such a private key
    When queen-rbee is run with its API key "file-s3cret" in a file of mode 644
    Then it exits with code 2
    And its stderr contains "is readable by others (mode 644): run chmod 600"

  Scenario: A queen given --api-key warns, and its command line no longer shows the key
    Given a queen is started with --api-key "cmdline-s3cret" on its command line
    Then the queen's log warns "--api-key shows the key to every user of this machine"
    And the queen's command line in /proc does not contain "cmdline-s3cret"
    When I GET "/jobs"
    Then the response status is 401
    When I GET "/jobs" with the API key "cmdline-s3cret"
    Then the response status is 200

  Scenario: After a job, the job store with its -wal and -shm, the catalog and the logs are 0600 in a 0700 state dir
    Given files are created with umask 022 unless rbee says otherwise
    And a queen is running
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    And these files of the state dir have mode 600:
      | file                     |
      | queen-jobs.sqlite        |
      | queen-jobs.sqlite-wal    |
      | queen-jobs.sqlite-shm    |
      | hive-catalog.sqlite      |
    And every log in the state dir's logs folder has mode 600
    And the state dir and its logs folder have mode 700

  Scenario: The queen's log the keeper writes when it wakes the queen is 0600
    Given files are created with umask 022 unless rbee says otherwise
    When I run rbee-keeper infer "Name the capital of France." --temperature 0
    Then the keeper exits with code 0
    And the queen's log in the state dir's logs folder has mode 600

  Scenario: A job with too many messages, or too long a stop string, is refused naming the cap
    Given a queen is running
    When I POST a job with 1025 messages
    Then the response status is 400
    And the error names the field "messages"
    And the error's message mentions "at most 1024"
    When I POST a job with a stop string of 257 characters
    Then the response status is 400
    And the error names the field "stop"
    And the error's message mentions "257 characters, at most 256"
    And the queen is still healthy

  Scenario: A chat completion with too long a stop string is refused naming the parameter and the cap
    Given a queen is running
    And an OpenAI client pointed at the queen
    When I ask the OpenAI client for a chat completion with a stop string of 300 characters
    Then the OpenAI client raises BadRequestError with status 400
    And the OpenAI error has type "invalid_request_error" and param "stop"
    And the OpenAI error's message mentions "at most 256"

  Scenario: Narration naming a model file with an escape sequence in its name reaches the keeper's stderr without the escape
    Given a queen is running
    And the default model's GGUF file is also at a path whose name holds an escape sequence
    When the keeper runs "Say hi." on that model file
    Then the keeper exits with code 0
    And stderr names the model file without its escape sequence
