"""Shared fixtures: every test runs with its own RBEE_HOME and no rbee setting inherited."""

from __future__ import annotations

from pathlib import Path

import pytest

from rbee_core.settings import isolated_variables

# Every RBEE_* setting declared in rbee_core.settings (RBEE_HOME is set below).
RBEE_ENV_VARS = tuple(v for v in isolated_variables() if v != "RBEE_HOME")


@pytest.fixture(autouse=True)
def rbee_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point RBEE_HOME at a fresh temporary folder so no test touches the real state."""
    home = tmp_path / "rbee-home"
    home.mkdir()
    monkeypatch.setenv("RBEE_HOME", str(home))
    for var in RBEE_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    return home
