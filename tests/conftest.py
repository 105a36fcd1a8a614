"""Shared fixtures: every test runs with its own RBEE_HOME and no plugin-selection env vars."""

from __future__ import annotations

from pathlib import Path

import pytest

RBEE_ENV_VARS = (
    "RBEE_LOAD_PLUGINS",
    "RBEE_DISABLE_PLUGINS",
    "RBEE_TRACE_PLUGINS",
    "RBEE_MODELS_DIR",
    "RBEE_WORKER_START_TIMEOUT",
    "RBEE_KV_CACHE",
    "RBEE_MAX_BATCH",
    "RBEE_BACKEND",
    "RBEE_TORCH_DTYPE",
)


@pytest.fixture(autouse=True)
def rbee_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point RBEE_HOME at a fresh temporary folder so no test touches the real state."""
    home = tmp_path / "rbee-home"
    home.mkdir()
    monkeypatch.setenv("RBEE_HOME", str(home))
    for var in RBEE_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    return home
