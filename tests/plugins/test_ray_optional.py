"""Without ``--ray`` (and on a hive the queen did not put on a Ray node), nothing of Ray is
imported: the plugin is registered in every program, its hooks stay inert."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import asyncio, sys
from rbee_core import create_plugin_manager
for program in ("keeper", "queen", "hive", "worker"):
    pm = create_plugin_manager(program)
assert create_plugin_manager("hive").hook.rbee_worker_launcher() is None
from rbee_queen.orchestrator import Queen
async def start():
    queen = Queen(create_plugin_manager("queen"))
    queen.start()
    await queen.close()
asyncio.run(start())
print("ray" in sys.modules, sorted(m for m in sys.modules if m.startswith("rbee_ray")))
"""


def test_no_ray_without_the_option(tmp_path: object) -> None:
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("RBEE_RAY")}
    env["RBEE_HOME"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    imported_ray, ours = done.stdout.split(" ", 1)
    assert imported_ray == "False", done.stdout
    assert "rbee_ray.plugin" in ours and "rbee_ray.nodes" not in ours, ours


def test_queen_refuses_ray_without_ray(tmp_path: object) -> None:
    # A Python that cannot import ray: its path hidden behind a stub that raises.
    env = {"RBEE_HOME": str(tmp_path), "PATH": __import__("os").environ["PATH"]}
    code = (
        "import importlib.util, sys; importlib.util.find_spec = lambda name, *a: None; "
        "from rbee_queen.cli import main; main(['--ray', 'auto', '--port', '0'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert "--ray needs Ray, which is not installed: pip install 'rbee[ray]'" in done.stderr
