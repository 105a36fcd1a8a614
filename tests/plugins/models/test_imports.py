"""Who the model library may import: ``rbee_core`` and the libraries its sources use, never a
program (the keeper, queen, hive and worker import it, so an import back would be a loop), and
no loop among its own modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import rbee_models

PACKAGE = Path(rbee_models.__file__).parent
ALLOWED = {"rbee_core", "rbee_models", "httpx", "huggingface_hub"}
PROGRAMS = ("rbee_keeper", "rbee_queen", "rbee_hive", "rbee_worker")


def imports_of(path: Path) -> set[str]:
    """The modules ``path`` imports anywhere (lazily in a function too), as dotted names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules() -> dict[str, set[str]]:
    return {f"rbee_models.{p.stem}": imports_of(p) for p in sorted(PACKAGE.glob("*.py"))}


def test_it_imports_only_the_core_and_its_sources_libraries() -> None:
    outside = {
        module: sorted(
            name
            for name in names
            if name.partition(".")[0] not in ALLOWED | set(sys.stdlib_module_names)
        )
        for module, names in modules().items()
    }
    assert outside == {module: [] for module in outside}


def test_importing_all_of_it_loads_no_program() -> None:
    names = ", ".join(sorted(modules()))
    script = f"import sys\nimport {names}\nprint('\\n'.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = done.stdout.split()
    assert [m for m in loaded if m.partition(".")[0] in PROGRAMS] == []
