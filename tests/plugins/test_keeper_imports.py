"""The keeper stays light: it loads only its own plugins, and those import no web framework,
no metrics, no ML library and no HTTP client until a command needs one.

Each check runs in a fresh interpreter: this test process has imported everything already.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

# The daemons' stack, the queen itself, the backends; httpx (about 0.1 s with the CLI it
# brings) waits until a command talks to the queen.
HEAVY = (
    "litestar",
    "prometheus_client",
    "torch",
    "transformers",
    "uvicorn",
    "httpx",
    "rbee_queen",
    "rbee_openai",
    "rbee_metrics",
    "rbee_torch",
    "rbee_llamacpp",
    "rbee_hive",
    "rbee_models.sources",
)


def heavy_modules_after(code: str) -> list[str]:
    script = f"import sys\n{code}\nprint('\\n'.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = done.stdout.split()
    return sorted(m for m in loaded if any(m == h or m.startswith(f"{h}.") for h in HEAVY))


@pytest.mark.parametrize(
    "code",
    [
        "import rbee_keeper.cli",
        "from rbee_keeper.cli import build_cli\nbuild_cli()",
    ],
    ids=["import", "build_cli"],
)
def test_the_keeper_imports_nothing_heavy(code: str) -> None:
    assert heavy_modules_after(code) == []


def test_the_keeper_loads_only_its_plugins() -> None:
    loaded = heavy_modules_after(
        "from rbee_keeper.cli import build_cli\n"
        "cli, keeper = build_cli()\n"
        "names = {name for name, plugin in keeper.pm.list_name_plugin() if plugin}\n"
        "assert {'keeper', 'models'} <= names, names\n"
        "assert not {'queen', 'openai', 'metrics', 'torch', 'llamacpp'} & names, names\n"
        "assert {'infer', 'queen', 'jobs', 'model', 'hive', 'worker'} <= set(cli.commands)"
    )
    assert loaded == []
