Feature: Structured outputs
  An agent or a pipeline that needs JSON asks for it with `response_format`, on the job API
  or the OpenAI API, and gets output that always parses and validates against its schema:
  decoding is constrained token by token, not hoped for. A schema that cannot be enforced is
  refused before the job is accepted, naming the problem.

  Scenario: The official client's parse() returns a valid object
    Given a queen is running
    And an OpenAI client pointed at the queen
    When I ask the OpenAI client to parse a City from "Name the capital of France."
    Then the parsed City has a name and a population as an integer
    And the job behind it narrated "the answer is held to JSON schema 'City'"

  Scenario: A small greedy model's constrained answer ends within the tokens it is given
    Given a queen is running
    And an OpenAI client pointed at the queen
    When I ask the OpenAI client to parse a Capital from "What is the capital of France?" in 80 tokens
    Then the parsed Capital has a country, a city and a population in millions
    When I post a strict chat completion held to the Capital schema, which does not close its object, in 80 tokens
    Then the answer is a Capital with no property the schema leaves out, finished with "stop"

  Scenario Outline: A job held to a schema answers JSON that validates (<engine>)
    Given workers run on the <engine>
    And a queen is running
    When I submit a job held to the person schema at temperature <temperature>
    Then the job's answer is a JSON person with a name, an age and a city

    Examples:
      | engine           | temperature |
      | llamacpp backend | 0           |
      | llamacpp backend | 1.2         |
      | torch backend    | 0           |

  Scenario: A constrained and an unconstrained job in one batch are both right
    A worker's first constrained job also builds llguidance's view of the vocabulary (a
    fraction of a second), long enough for a short free job to finish before it starts; the
    first job here builds it, so that the pair is decoded side by side.

    Given a queen is running
    When I submit a job held to the person schema at temperature 0
    Then the job's answer is a JSON person with a name, an age and a city
    When I submit a job held to the person schema and a free job "Name the capital of France." at once
    Then the job's answer is a JSON person with a name, an age and a city
    And the free job answers "The capital of France is Paris."
    And the two jobs ran on one worker at the same time

  Scenario: A schema that cannot be enforced is refused before it runs
    Given a queen is running
    When I submit a job held to the schema {"type": "string", "pattern": "(("}
    Then the answer is 400 naming "response_format" and "regex parse error"
    When I post a chat completion held to the schema {"type": "objectx"}
    Then the answer is 400 naming "response_format" and "objectx"
    And no job was created

  Scenario: rbee-keeper infer --json-schema prints JSON that fits the schema
    Given a queen is running
    And the person schema is saved as person.json in the scenario's home
    When I run rbee-keeper infer "Describe a person who lives in the capital of France." --json-schema <home>/person.json --temperature 0 -q
    Then the keeper exits with code 0
    And stdout is a JSON person with a name, an age and a city
