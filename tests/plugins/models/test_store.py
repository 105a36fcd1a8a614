"""The hive's ModelStore over a fake model source: shared provisioning, stale entries,
failures, info and removal."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from rbee_core.errors import ModelUnavailable, UnknownModel
from rbee_core.models import LocalModel, ModelCatalog
from rbee_core.narration import Narrate, Narration
from rbee_core.paths import models_dir
from rbee_models.catalog import ModelCatalogDB
from rbee_models.sources import FileSource, UrlSource
from rbee_models.store import ModelInUse, ModelStore

CONTENT = b"GGUF fake model"


class FakeSource:
    """``fake:NAME``: writes a small file under models_dir(). ``gate``, when given, holds
    provisioning until the test sets it; ``fail`` makes it raise instead."""

    scheme = "fake"

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate
        self.entered = threading.Event()
        self.calls = 0
        self.fail: BaseException | None = None

    def aliases(self) -> dict[str, str]:
        return {"fake-model": "fake:one"}

    def check(self, ref: str) -> None:
        pass

    def provision(self, ref: str, narrate: Narrate) -> LocalModel:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10), "the test never opened the gate"
        narrate("fake_fetch", f"fetching {ref}", progress={"done": 1, "total": 1})
        if self.fail is not None:
            raise self.fail
        name = ref.removeprefix("fake:")
        path = models_dir() / "fake" / name / f"{name}.gguf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(CONTENT)
        return LocalModel(name, path, "gguf")


def make_store(tmp_path: Path, source: FakeSource) -> ModelStore:
    return ModelStore(
        ModelCatalog([source, FileSource()]), ModelCatalogDB(tmp_path / "catalog.sqlite")
    )


def actions(said: list[Narration]) -> list[str]:
    return [n.action for n in said]


def test_concurrent_ensures_provision_once(tmp_path: Path) -> None:
    source = FakeSource(gate=threading.Event())
    store = make_store(tmp_path, source)
    first: list[Narration] = []
    second: list[Narration] = []

    async def main() -> tuple[LocalModel, LocalModel]:
        one = asyncio.create_task(store.ensure("fake-model", first.append))
        await asyncio.to_thread(source.entered.wait, 5)  # provisioning has started
        # The same model by its full reference: it joins the running provisioning.
        two = asyncio.create_task(store.ensure("fake:one", second.append))
        await asyncio.sleep(0)
        assert store.info("fake-model")["state"] == "downloading"
        assert source.gate is not None
        source.gate.set()
        return await asyncio.gather(one, two)

    try:
        a, b = asyncio.run(main())
        assert source.calls == 1
        assert a == b
        assert a.name == "fake-model"
        assert a.path == models_dir() / "fake" / "one" / "one.gguf"
        assert a.path.read_bytes() == CONTENT
        assert actions(first) == ["fake_fetch", "model_ready"]
        assert actions(second) == ["download_wait", "fake_fetch", "model_ready"]
        assert all(n.actor == "rbee-hive" for n in first + second)
        assert first[0].progress == {"done": 1, "total": 1}
        assert "fake-model" in second[0].message

        # Now it is in the catalog: no provisioning, no narration.
        third: list[Narration] = []
        assert asyncio.run(store.ensure("fake-model", third.append)) == a
        assert source.calls == 1
        assert third == []
        info = store.info("fake-model")
        assert info["state"] == "ready"
        assert info["problem"] is None
        assert info["ref"] == "fake:one"
        assert info["size"] == len(CONTENT)
    finally:
        store.close()


def test_a_stale_entry_is_provisioned_again(tmp_path: Path) -> None:
    source = FakeSource()
    store = make_store(tmp_path, source)
    try:
        local = asyncio.run(store.ensure("fake-model", lambda n: None))
        local.path.unlink()
        info = store.info("fake-model")
        assert info["state"] == "stale"
        assert "gone" in info["problem"]

        said: list[Narration] = []
        again = asyncio.run(store.ensure("fake-model", said.append))
        assert source.calls == 2
        assert again.path.read_bytes() == CONTENT
        assert actions(said)[0] == "model_stale"
        assert "fake-model" in said[0].message
        assert actions(said)[-1] == "model_ready"
        assert store.info("fake-model")["state"] == "ready"
    finally:
        store.close()


def test_a_failure_reaches_every_waiter_and_leaves_no_entry(tmp_path: Path) -> None:
    source = FakeSource(gate=threading.Event())
    source.fail = ModelUnavailable("the fake hub is down", model="fake:one")
    store = make_store(tmp_path, source)
    first: list[Narration] = []
    second: list[Narration] = []

    async def main() -> tuple[LocalModel | BaseException, LocalModel | BaseException]:
        one = asyncio.create_task(store.ensure("fake-model", first.append))
        await asyncio.to_thread(source.entered.wait, 5)
        two = asyncio.create_task(store.ensure("fake-model", second.append))
        await asyncio.sleep(0)
        assert source.gate is not None
        source.gate.set()
        return await asyncio.gather(one, two, return_exceptions=True)

    try:
        results = asyncio.run(main())
        assert source.calls == 1
        for result in results:
            assert isinstance(result, ModelUnavailable)
            assert result.message == "the fake hub is down"
        assert store.db.get("fake-model") is None
        assert store.entries() == []
        assert store.info("fake-model")["state"] == "not downloaded"
        assert actions(second) == ["download_wait", "fake_fetch"]

        # A later attempt starts afresh.
        source.fail = None
        local = asyncio.run(store.ensure("fake-model", lambda n: None))
        assert source.calls == 2
        assert local.path.read_bytes() == CONTENT
    finally:
        store.close()


def test_info_of_a_known_model_that_is_not_here(tmp_path: Path) -> None:
    store = make_store(tmp_path, FakeSource())
    try:
        assert store.info("fake-model") == {
            "name": "fake-model",
            "ref": "fake:one",
            "source": "fake",
            "state": "not downloaded",
        }
        with pytest.raises(UnknownModel):
            store.info("no-such-alias")
    finally:
        store.close()


def test_remove_deletes_downloaded_files(tmp_path: Path) -> None:
    source = FakeSource()
    store = make_store(tmp_path, source)
    try:
        local = asyncio.run(store.ensure("fake-model", lambda n: None))
        other = asyncio.run(store.ensure("fake:two", lambda n: None))
        assert local.path.is_file()
        entry = store.remove("fake-model", [])
        assert entry.name == "fake-model"
        assert not local.path.exists()
        assert not local.path.parent.exists()
        assert store.db.get("fake-model") is None
        # Only that model's files: the cache and the other model stay.
        assert models_dir().is_dir()
        assert other.path.read_bytes() == CONTENT
        assert [e.name for e in store.entries()] == ["fake:two"]
    finally:
        store.close()


def test_remove_never_deletes_a_users_file(tmp_path: Path) -> None:
    mine = tmp_path / "mine" / "my-model.gguf"
    mine.parent.mkdir()
    mine.write_bytes(b"my own model")
    store = make_store(tmp_path, FakeSource())
    ref = f"file:{mine}"
    try:
        local = asyncio.run(store.ensure(ref, lambda n: None))
        assert local.path == mine
        entry = store.remove(ref, [])
        assert entry.path == str(mine)
        assert mine.read_bytes() == b"my own model"
        assert store.db.get(ref) is None
    finally:
        store.close()


def test_remove_refuses_a_model_in_use(tmp_path: Path) -> None:
    store = make_store(tmp_path, FakeSource())
    try:
        local = asyncio.run(store.ensure("fake-model", lambda n: None))
        with pytest.raises(ModelInUse, match="worker-1") as caught:
            store.remove("fake-model", ["worker-1"])
        assert caught.value.status == 409
        assert caught.value.details["model"] == "fake-model"
        assert local.path.read_bytes() == CONTENT
        assert store.db.get("fake-model") is not None
    finally:
        store.close()


def test_remove_a_model_not_in_the_catalog(tmp_path: Path) -> None:
    store = make_store(tmp_path, FakeSource())
    try:
        with pytest.raises(UnknownModel, match="not in this hive's catalog"):
            store.remove("fake-model", [])
        with pytest.raises(UnknownModel):
            store.remove("no-such-alias", [])
    finally:
        store.close()


class HubLikeSource(FakeSource):
    """Lays files out as huggingface_hub's cache does: the snapshot holds symlinks to blobs."""

    def provision(self, ref: str, narrate: Narrate) -> LocalModel:
        self.calls += 1
        repo = models_dir() / "hf" / "models--org--name"
        blob = repo / "blobs" / "0123abcd"
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(CONTENT)
        snapshot = repo / "snapshots" / "c0ffee"
        snapshot.mkdir(parents=True, exist_ok=True)
        link = snapshot / "model.gguf"
        link.symlink_to(os.path.relpath(blob, snapshot))
        return LocalModel("model", link, "gguf")


def test_remove_frees_the_bytes_of_a_hub_cached_model(tmp_path: Path) -> None:
    # remove() says it deletes "the files rbee downloaded"; for a model in huggingface_hub's
    # cache those are the blobs, not just the snapshot's symlinks to them.
    store = make_store(tmp_path, HubLikeSource())
    try:
        local = asyncio.run(store.ensure("fake-model", lambda n: None))
        assert local.path.read_bytes() == CONTENT
        store.remove("fake-model", [])
        left = [p for p in models_dir().rglob("*") if p.is_file()]
        assert left == [], f"remove left {left}"
    finally:
        store.close()


def test_a_file_model_is_never_deleted_whatever_its_path_says(tmp_path: Path) -> None:
    # The path runs through the models folder and out again: a check on the text would take
    # it for one of rbee's downloads and delete its folder, the user's other files with it.
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "m.gguf").write_bytes(b"my own model")
    (victim / "notes.txt").write_text("mine")
    models_dir().mkdir(parents=True)
    climbing = models_dir() / ".." / ".." / ".." / "victim" / "m.gguf"
    assert climbing.resolve() == (victim / "m.gguf").resolve()
    store = make_store(tmp_path, FakeSource())
    ref = f"file:{climbing}"
    try:
        local = asyncio.run(store.ensure(ref, lambda n: None))
        assert local.path == (victim / "m.gguf").resolve()  # the catalog keeps the real path
        entry = store.remove(ref, [])
        assert entry.path == str((victim / "m.gguf").resolve())
        assert store.entries() == []
        assert (victim / "m.gguf").read_bytes() == b"my own model"
        assert (victim / "notes.txt").read_text() == "mine"
    finally:
        store.close()


def test_a_download_entry_whose_files_lie_outside_is_forgotten_not_deleted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A catalog row that says http but points out of the models folder (a damaged or edited
    # catalog, a download folder replaced by a link): its files are kept.
    elsewhere = tmp_path / "elsewhere" / "k"
    elsewhere.mkdir(parents=True)
    (elsewhere / "x.gguf").write_bytes(CONTENT)
    store = ModelStore(
        ModelCatalog([UrlSource("http")]), ModelCatalogDB(tmp_path / "catalog.sqlite")
    )
    ref = "http://127.0.0.1:1/x.gguf"
    try:
        store.db.add(ref, ref, LocalModel(ref, elsewhere / "x.gguf", "gguf"))
        models_dir().mkdir(parents=True)
        (models_dir() / "downloads").symlink_to(elsewhere.parent)
        linked = "http://127.0.0.1:1/y.gguf"
        store.db.add(linked, linked, LocalModel("y", models_dir() / "downloads/k/x.gguf", "gguf"))
        store.remove(ref, [])
        store.remove(linked, [])
        assert store.entries() == []
        assert (elsewhere / "x.gguf").read_bytes() == CONTENT
        assert "its files kept: refused:" in caplog.text
    finally:
        store.close()


def test_a_plugin_model_at_the_top_of_the_models_folder_never_takes_the_folder_with_it(
    tmp_path: Path,
) -> None:
    class TopLevelSource(FakeSource):
        def provision(self, ref: str, narrate: Narrate) -> LocalModel:
            path = models_dir() / "top.gguf"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(CONTENT)
            return LocalModel("top", path, "gguf")

    store = make_store(tmp_path, TopLevelSource())
    try:
        other = models_dir() / "downloads" / "k" / "other.gguf"
        other.parent.mkdir(parents=True)
        other.write_bytes(CONTENT)
        asyncio.run(store.ensure("fake-model", lambda n: None))
        store.remove("fake-model", [])
        assert other.read_bytes() == CONTENT
        assert (models_dir() / "top.gguf").is_file()
    finally:
        store.close()
