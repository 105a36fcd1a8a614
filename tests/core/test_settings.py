"""rbee_core.settings: each setting's type, default and error, and the docs table made from them.

The docs table is a snapshot: after changing a setting, regenerate it with
``python -c "from tests.core.test_settings import write_table; write_table()"``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rbee_core.engine_options import EngineOptions
from rbee_core.errors import InvalidRequest, ModelUnavailable
from rbee_core.kv_cache import KvCacheSize
from rbee_core.settings import (
    API_KEY,
    KEEP_PARTIAL,
    KV_CACHE,
    LOAD_PLUGINS,
    MAX_BATCH,
    RAY_GRANT_TIMEOUT,
    RAY_WORKER_CPUS,
    SETTINGS,
    SSE_KEEPALIVE,
    THREADS,
    TRACE_PLUGINS,
    isolated_variables,
    settings_table,
)

API_MD = Path(__file__).parents[2] / "docs" / "api.md"
_TABLE = re.compile(r"(<!-- settings table: begin -->\n)(.*?)(<!-- settings table: end -->)", re.S)


def write_table() -> None:
    """Rewrite docs/api.md's settings table from the declaration."""
    text = API_MD.read_text()
    API_MD.write_text(_TABLE.sub(lambda m: m[1] + settings_table() + m[3], text))


def test_docs_table_matches_the_declaration() -> None:
    found = _TABLE.search(API_MD.read_text())
    assert found, "docs/api.md lost its settings-table markers"
    assert found[2] == settings_table(), "regenerate it: see this module's docstring"


def test_every_setting_is_declared_once_and_documented() -> None:
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    for s in SETTINGS:
        assert s.description and s.kind and s.default_doc and s.programs, s.name
        assert set(s.programs) <= {"keeper", "queen", "hive", "worker"}, s.name
        assert s.read({}) == s.default, s.name
        assert s.read({s.name: "  "}) == s.default or s is LOAD_PLUGINS, s.name


def test_typed_values() -> None:
    assert KV_CACHE.read({"RBEE_KV_CACHE": " 8192 tokens "}) == KvCacheSize(tokens=8192)
    assert MAX_BATCH.read({"RBEE_MAX_BATCH": "8"}) == 8
    assert THREADS.read({"RBEE_THREADS": "2"}) == 2
    assert SSE_KEEPALIVE.read({}) == 15.0
    assert SSE_KEEPALIVE.read({"RBEE_SSE_KEEPALIVE": "0.5"}) == 0.5
    assert RAY_GRANT_TIMEOUT.read({}) == 600.0
    assert RAY_WORKER_CPUS.read({"RBEE_RAY_WORKER_CPUS": "0.5"}) == 0.5
    assert KEEP_PARTIAL.read({"RBEE_KEEP_PARTIAL": "Yes"}) is True
    assert KEEP_PARTIAL.read({"RBEE_KEEP_PARTIAL": "0"}) is False
    assert TRACE_PLUGINS.read({"RBEE_TRACE_PLUGINS": "0"}) is True  # any value turns it on
    assert LOAD_PLUGINS.read({"RBEE_LOAD_PLUGINS": "a, b,"}) == {"a", "b"}
    assert LOAD_PLUGINS.read({"RBEE_LOAD_PLUGINS": ""}) == frozenset()  # none at all
    assert API_KEY.read({"RBEE_API_KEY": "k"}) == "k"


@pytest.mark.parametrize(
    ("setting", "bad", "error", "must"),
    [
        (MAX_BATCH, "0", InvalidRequest, "a whole number >= 1"),
        (THREADS, "two", ModelUnavailable, "a whole number >= 1"),
        (KV_CACHE, "lots", InvalidRequest, "a size (512MiB, 4GiB) or a number of token slots"),
        (SSE_KEEPALIVE, "-1", InvalidRequest, "a number of seconds > 0"),
        (RAY_GRANT_TIMEOUT, "soon", InvalidRequest, "a number of seconds > 0"),
        (RAY_WORKER_CPUS, "nan", InvalidRequest, "a number of CPUs >= 0"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_value(
    setting: object, bad: str, error: type[Exception], must: str
) -> None:
    assert hasattr(setting, "read") and hasattr(setting, "name")
    with pytest.raises(error) as caught:
        setting.read({setting.name: f" {bad} "})
    assert str(caught.value).startswith(f"{setting.name} must be {must}")
    assert str(caught.value).endswith(f", not {bad!r}")


def test_the_environment_is_the_default_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RBEE_MAX_BATCH", "3")
    assert MAX_BATCH.read() == 3


def test_engine_options_are_read_once_typed() -> None:
    env = {"RBEE_MAX_BATCH": "8", "RBEE_KV_CACHE": "512MiB", "RBEE_THREADS": "2"}
    assert EngineOptions.from_env(env) == EngineOptions(8, KvCacheSize(bytes=512 * 2**20), 2)
    assert EngineOptions.from_env({"RBEE_TORCH_DTYPE": " bf16 "}).torch_dtype == "bf16"
    assert EngineOptions.from_env({}) == EngineOptions()
    assert EngineOptions.from_env({"RBEE_KV_TYPE": " Q8_0 "}).kv_type == "q8_0"
    with pytest.raises(ModelUnavailable, match="RBEE_KV_TYPE must be f16 or q8_0, not 'q4'"):
        EngineOptions.from_env({"RBEE_KV_TYPE": "q4"})
    assert EngineOptions.from_env({}).repack
    assert not EngineOptions.from_env({"RBEE_REPACK": " No "}).repack
    with pytest.raises(ModelUnavailable, match="RBEE_REPACK must be `1`/`true`/`yes` or"):
        EngineOptions.from_env({"RBEE_REPACK": "maybe"})
    assert EngineOptions.from_env({}).prefill_chunk == 63
    assert EngineOptions.from_env({"RBEE_PREFILL_CHUNK": "512"}).prefill_chunk == 512
    with pytest.raises(ModelUnavailable, match="RBEE_PREFILL_CHUNK must be a whole number from"):
        EngineOptions.from_env({"RBEE_PREFILL_CHUNK": "0"})
    with pytest.raises(ModelUnavailable, match="RBEE_THREADS must be"):
        EngineOptions.from_env({"RBEE_THREADS": "many"})


def test_tests_isolate_every_rbee_setting() -> None:
    assert set(isolated_variables()) == {s.name for s in SETTINGS if s.name.startswith("RBEE_")}
    assert "RBEE_KV_CACHE" in isolated_variables() and "HF_ENDPOINT" not in isolated_variables()
