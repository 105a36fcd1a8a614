"""rbee on a Ray cluster (the ``rbee[ray]`` extra): a hive on every Ray node, its workers as
Ray actors that hold the resources they use. Nothing here imports Ray until a queen runs
with ``--ray`` or a hive runs on a Ray node."""
