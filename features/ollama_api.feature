Feature: Ollama's API
  Tools that speak Ollama's API (Open WebUI, Continue, LangChain's ChatOllama, the official
  `ollama` Python client) work against the queen's root unchanged: `ollama.Client(host=QUEEN)`.
  Every chat, generation and embedding is an rbee job; models are named as Ollama users type
  them (`smollm2:135m` is rbee's `smollm2-135m`).

  Scenario: Chat, streamed and not, and generate with the ollama client, each request a job
    Given a queen is running
    And an Ollama client pointed at the queen
    When I chat with the Ollama client about "Name the capital of France."
    Then the Ollama chat answer is the text of the job behind it, done with "stop"
    When I stream an Ollama chat about "Name the capital of France."
    Then the Ollama stream's parts join into the job's text and only its last part is done
    And the Ollama stream's last part counts the job's tokens, with durations in nanoseconds
    When I stream an Ollama chat by hand
    Then the Ollama answer is NDJSON, one object a line, the last one done
    When I ask the Ollama client to generate from "The capital of France is" with at most 8 tokens
    Then the Ollama generation answers the job's text, done with "length"
    And GET /jobs lists the 4 Ollama requests as completed jobs of "smollm2-135m"

  Scenario: A pydantic schema as format gives an answer that validates
    Given a queen is running
    And an Ollama client pointed at the queen
    When I ask the Ollama client for a City as format about "Describe Paris as JSON."
    Then the Ollama answer validates as a City
    When I ask the Ollama client for format "json" about "Describe Paris as JSON."
    Then the Ollama answer is a JSON object

  Scenario: Embeddings, as /api/embed and the older /api/embeddings
    Given a queen is running
    And an Ollama client pointed at the queen
    When I embed these sentences with the Ollama client:
      | sentence                              |
      | The cat sat on the mat.               |
      | A cat was sitting on the mat.         |
      | Stock markets fell sharply on Monday. |
    Then the Ollama client got 3 unit vectors of 576 dimensions
    And the first two Ollama vectors are closer to each other than either is to the third
    When I embed "The cat sat on the mat." with the Ollama client's older embeddings call
    Then the Ollama embedding is the first of the three

  Scenario: Models: list, show, ps, pull with progress, delete
    Given the model cache is fresh
    And a host on loopback serves the default model's GGUF file
    And a queen is running
    And an Ollama client pointed at the queen
    When I list the models with the Ollama client
    Then the Ollama model list includes "smollm2:135m"
    When I ask the Ollama client to show "smollm2:135m"
    Then the Ollama model shows it can do "completion" and "tools"
    When I chat with the Ollama client about "Name the capital of France."
    Then the Ollama client's ps lists "smollm2:135m" as loaded
    When I pull the served model with the Ollama client, streamed
    Then the Ollama pull's progress grows to the file's size and ends with "success"
    And the Ollama model list includes the served model
    When I delete the served model with the Ollama client
    Then the Ollama model list does not include the served model
    And no downloaded model file is left

  Scenario: An unknown model is a ResponseError 404 with rbee's message
    Given a queen is running
    And an Ollama client pointed at the queen
    When I chat with the Ollama client using the model "llama9:70b"
    Then the Ollama client raises ResponseError with status 404 naming "llama9:70b" and "smollm2-135m"
    When I chat with the Ollama client with the option "repeat_penalty" set to 1.3
    Then the Ollama client raises ResponseError with status 400 naming "repeat_penalty"
    When I chat with the Ollama client with the option "num_beams" set to 4
    Then the Ollama client raises ResponseError with status 400 naming "num_beams"
    And the queen is still healthy
