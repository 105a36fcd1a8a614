Feature: Hives on other machines
  The second machine is real as far as the network goes: a network namespace joined to this
  one by a veth pair, with its own address and its own sshd, logged into with a key the
  scenario generates. ssh starts sessions there with sshd's default PATH, as on any server.
  Nothing leaves this machine: every address belongs to the namespace the scenario made.
  The queen listens on this machine's end of the link, with an API key.

  Background:
    Given a second machine reached through ssh as "rbee-remote"

  Scenario: hive install puts rbee there; hive start runs a hive there; a job pinned there runs there
    Given a queen with the API key "k-remote" listens on this machine's address towards it
    When I run "rbee-keeper hive install --ssh rbee-remote"
    Then the keeper exits with code 0
    And stdout contains "rbee is installed on rbee-remote"
    And stderr shows "copying"
    When I run rbee-keeper hive start --ssh rbee-remote
    Then the keeper exits with code 0
    And stdout says hive "rbee-remote" is ready at the second machine's address
    And no command line on the second machine holds the API key
    When I run rbee-keeper infer "Name the capital of France." --temperature 0 --hive rbee-remote
    Then the keeper exits with code 0
    And stdout is exactly "The capital of France is Paris.\n"
    And the worker of hive "rbee-remote" runs on the second machine, at its address
    When I run rbee-keeper hive stop rbee-remote
    Then the keeper exits with code 0
    And nothing of rbee runs on the second machine within 15 seconds

  Scenario: Without rbee installed there, hive start fails within seconds naming rbee-hive and the PATH
    Given a queen with the API key "k-remote" listens on this machine's address towards it
    When I run rbee-keeper hive start --ssh rbee-remote
    Then the keeper exits with code 1
    And it took less than 15 seconds
    And stderr's last line contains "rbee-hive is not installed on"
    And stderr's last line contains "nor on the PATH of a non-interactive ssh shell (/usr/local/sbin:"

  Scenario: A hive with a wrong key is refused, and the keeper says so at once
    Given a queen with the API key "k-remote" listens on this machine's address towards it
    And the keeper's API key is "wrong"
    When I run rbee-keeper hive start --ssh rbee-remote --remote-command <rbee-hive>
    Then the keeper exits with code 1
    And it took less than 15 seconds
    And stderr shows "refused /hives/register: a valid 'Authorization: Bearer <API key>' header is required"
    And stderr shows "its log,"
    And nothing of rbee runs on the second machine within 5 seconds

  Scenario: A queen on loopback only: hive start warns at once, and the hive's own error comes back
    Given a queen with the API key "k-remote" listens on loopback only
    When I run rbee-keeper hive start --ssh rbee-remote --remote-command <rbee-hive>
    Then the keeper exits with code 1
    And stderr shows "warning: the queen listens on 127.0.0.1 only"
    And stderr shows "cannot reach the queen at http://127.0.0.1:"

  Scenario: Cutting the link marks the remote hive unreachable; the next job goes to this machine's hive
    Given a queen with the API key "k-remote" and a heartbeat of 0.5 seconds listens on this machine's address towards it
    When I run rbee-keeper hive start --ssh rbee-remote --remote-command <rbee-hive> --heartbeat 0.5
    Then the keeper exits with code 0
    When I run rbee-keeper infer "Name the capital of France." --temperature 0 --max-tokens 8
    Then the keeper exits with code 0
    And stderr shows "picked cpu on rbee-remote"
    When the link to the second machine is cut
    Then hive "rbee-remote" becomes unreachable within 10 seconds
    When I run rbee-keeper infer "Name the capital of France." --temperature 0 --max-tokens 8
    Then the keeper exits with code 0
    And stderr shows "picked cpu on localhost"
    And the queen's log has no "Task exception was never retrieved"
