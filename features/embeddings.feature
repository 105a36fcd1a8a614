Feature: Embeddings
  RAG pipelines embed their documents and questions through `POST /v1/embeddings`. Each
  request is an rbee job on a worker of the model, on either backend: the mean of the
  model's last hidden states over each text, normalised, several texts in one batch.

  Scenario Outline: Similar sentences are closer than unrelated ones (<engine>)
    Given workers run on the <engine>
    And a queen is running
    And an OpenAI client pointed at the queen
    When I embed these sentences with the OpenAI client:
      | sentence                              |
      | The cat sat on the mat.               |
      | A cat was sitting on the mat.         |
      | Stock markets fell sharply on Monday. |
    Then I get 3 unit vectors of 576 dimensions
    And the first two are closer to each other than either is to the third
    And the usage counts the sentences' tokens
    And the embedding job shows in rbee-keeper jobs list as "completed"

    Examples:
      | engine           |
      | llamacpp backend |
      | torch backend    |

  Scenario: Floats and base64 carry the same vectors
    Given a queen is running
    When I post "The cat sat on the mat." to /v1/embeddings as float and as base64
    Then both answers hold the same vector

  Scenario: Dimensions the model cannot give are refused by name
    Given a queen is running
    When I post "hello" to /v1/embeddings asking for 64 dimensions
    Then the answer is 400 naming "dimensions" and "576-dimensional"
