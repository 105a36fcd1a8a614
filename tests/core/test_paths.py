"""Where rbee keeps its files; every test redirects HOME so the real home is never touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from rbee_core import paths

XDG_VARS = ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")


@pytest.fixture
def fake_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("RBEE_HOME", raising=False)
    monkeypatch.delenv("RBEE_MODELS_DIR", raising=False)
    for var in XDG_VARS:
        monkeypatch.delenv(var, raising=False)
    return home


def test_rbee_home_moves_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "rbee"
    monkeypatch.setenv("RBEE_HOME", str(home))
    # RBEE_HOME wins over the XDG variables.
    for var in XDG_VARS:
        monkeypatch.setenv(var, str(tmp_path / "xdg" / var))
    assert paths.config_dir() == home / "config"
    assert paths.cache_dir() == home / "cache"
    assert paths.state_dir() == home / "state"
    assert paths.models_dir() == home / "cache" / "models"


def test_logs_dir_is_created_on_demand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "rbee"
    monkeypatch.setenv("RBEE_HOME", str(home))
    assert not (home / "state" / "logs").exists()
    logs = paths.logs_dir()
    assert logs == home / "state" / "logs"
    assert logs.is_dir()
    # Calling it again is fine.
    assert paths.logs_dir() == logs


def test_defaults_follow_home(fake_home: Path) -> None:
    assert paths.config_dir() == fake_home / ".config" / "rbee"
    assert paths.cache_dir() == fake_home / ".cache" / "rbee"
    assert paths.state_dir() == fake_home / ".local" / "state" / "rbee"
    assert paths.models_dir() == fake_home / ".cache" / "rbee" / "models"


def test_xdg_variables(fake_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cch"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "st"))
    assert paths.config_dir() == tmp_path / "cfg" / "rbee"
    assert paths.cache_dir() == tmp_path / "cch" / "rbee"
    assert paths.state_dir() == tmp_path / "st" / "rbee"
    assert paths.models_dir() == tmp_path / "cch" / "rbee" / "models"


def test_logs_dir_under_xdg_state(
    fake_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "st"))
    logs = paths.logs_dir()
    assert logs == tmp_path / "st" / "rbee" / "logs"
    assert logs.is_dir()
    assert not (fake_home / ".local").exists()


def test_empty_variables_are_ignored(fake_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RBEE_HOME", "")
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    monkeypatch.setenv("RBEE_MODELS_DIR", "")
    assert paths.cache_dir() == fake_home / ".cache" / "rbee"
    assert paths.models_dir() == fake_home / ".cache" / "rbee" / "models"


def test_models_dir_override_with_rbee_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RBEE_HOME", str(tmp_path / "rbee"))
    monkeypatch.setenv("RBEE_MODELS_DIR", str(tmp_path / "shared-models"))
    assert paths.models_dir() == tmp_path / "shared-models"
    # Only the model cache moves.
    assert paths.cache_dir() == tmp_path / "rbee" / "cache"


def test_models_dir_override_with_xdg(
    fake_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RBEE_MODELS_DIR", str(tmp_path / "m"))
    assert paths.models_dir() == tmp_path / "m"
    assert paths.cache_dir() == fake_home / ".cache" / "rbee"


def test_path_functions_do_not_create_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "rbee"
    monkeypatch.setenv("RBEE_HOME", str(home))
    for fn in (paths.config_dir, paths.cache_dir, paths.state_dir, paths.models_dir):
        fn()
    assert not home.exists()
