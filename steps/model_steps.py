"""Steps about models: the catalog, downloads from a loopback host, references."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from behave import given, then, when

from steps.support import processes
from steps.support.fake_hub import FakeHub
from steps.support.model_server import ModelServer
from steps.support.placeholders import default_gguf, expand
from steps.support.sse import read_stream


def _gguf() -> Path:
    return default_gguf()


@given("a host on loopback serves the default model's GGUF file")
def step_model_server(context: Any) -> None:
    context.model_server = ModelServer(_gguf())
    context.add_cleanup(context.model_server.close)
    context.model_url = context.model_server.url


@given("the host dies after sending {percent:d}% of the file")
def step_server_dies(context: Any, percent: int) -> None:
    context.model_server.die_after = _gguf().stat().st_size * percent // 100


@given("the host is healthy again")
@when("the host is healthy again")
def step_server_healthy(context: Any) -> None:
    context.model_server.die_after = None


@given("the Hugging Face hub is unreachable")
def step_hub_unreachable(context: Any) -> None:
    # A closed loopback port: the test never reaches beyond this machine.
    context.env["HF_ENDPOINT"] = f"http://127.0.0.1:{processes.free_port()}"
    context.env["HF_HUB_ETAG_TIMEOUT"] = "3"


@given('a Hugging Face hub on loopback serves the default model as "{repo}"')
def step_fake_hub(context: Any, repo: str) -> None:
    """The repository holds the default model twice, as a hub repository often does: as
    safetensors (what ``hf:ORG/NAME`` downloads) and as its GGUF file (for
    ``hf:ORG/NAME:FILE.gguf``). HF_ENDPOINT points every program at it, on loopback."""
    folder = _converted_default_model(context)
    weights = {p.name: p for p in sorted(folder.iterdir()) if p.is_file() and p.name[0] != "."}
    context.hub_repo = repo
    context.hub_weights = weights
    context.hub = FakeHub({repo: {**weights, _gguf().name: _gguf()}})
    context.add_cleanup(context.hub.close)
    context.env["HF_ENDPOINT"] = context.hub.url
    context.model_sizes = {
        f"hf:{repo}": sum(p.stat().st_size for p in weights.values()),
        f"hf:{repo}:{_gguf().name}": _gguf().stat().st_size,
    }


def _converted_default_model(context: Any) -> Path:
    """The default model as safetensors: the torch backend's own conversion of its GGUF, in
    the model cache shared by the run (converted once, as any torch scenario would)."""
    script = (
        "import sys\nfrom pathlib import Path\nfrom rbee_core.models import LocalModel\n"
        "from rbee_torch.convert import ensure_safetensors\n"
        "model = LocalModel('smollm2-135m', Path(sys.argv[1]), 'gguf')\n"
        "print(ensure_safetensors(model, lambda *args, **kwargs: None))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(_gguf())],
        env=context.env, capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    return Path(done.stdout.strip())


@then("the hub sent each file of the safetensors model once, and nothing else")
def step_hub_sent_weights(context: Any) -> None:
    expected = sorted(f"{context.hub_repo}/{name}" for name in context.hub_weights)
    assert sorted(context.hub.downloads) == expected, context.hub.downloads


@then('the hub sent "{name}" once, and nothing else')
def step_hub_sent_one(context: Any, name: str) -> None:
    assert context.hub.downloads == [f"{context.hub_repo}/{name}"], context.hub.downloads


@when("I start a queen")
def step_start_queen(context: Any) -> None:
    context.execute_steps("Given a queen is running")


_model_arg = expand


@when('I submit two jobs for the model "{model}" at the same time and read both streams')
def step_two_jobs(context: Any, model: str) -> None:
    body = {"model": _model_arg(context, model), "prompt": "Name the capital of France.",
            "temperature": 0}  # fmt: skip

    def run() -> Any:
        job = httpx.post(f"{context.queen_url}/jobs", json=body, timeout=30).json()
        return read_stream(f"{context.queen_url}{job['sse_url']}")

    with ThreadPoolExecutor(2) as pool:
        context.two = [f.result() for f in [pool.submit(run), pool.submit(run)]]


@then('both streams answer "{text}"')
def step_both_answer(context: Any, text: str) -> None:
    assert [s.text for s in context.two] == [text, text], [s.text for s in context.two]


@then("the host was asked for the file {n:d} time")
@then("the host was asked for the file {n:d} times")
def step_host_asked(context: Any, n: int) -> None:
    assert len(context.model_server.requests) == n, context.model_server.requests


@then('one stream narrates "{text}"')
def step_one_narrates(context: Any, text: str) -> None:
    hits = [any(text in n["message"] for n in s.narration) for s in context.two]
    assert hits.count(True) == 1, [[n["message"] for n in s.narration] for s in context.two]


@then("stderr shows at least {n:d} download progress lines")
def step_progress_lines(context: Any, n: int) -> None:
    lines = [line for line in context.result.stderr.splitlines() if "MB/s" in line and "%" in line]
    assert len(lines) >= n, context.result.stderr


def _catalog(context: Any) -> list[dict[str, Any]]:
    result = subprocess.run(
        [*processes.command("rbee-keeper"), "model", "list", "--json",
         "--queen-url", context.queen_url],
        env=context.env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    models: list[dict[str, Any]] = json.loads(result.stdout)["models"]
    return models


@then('the catalog lists "{name}" from source "{source}" as {state}')
def step_catalog_lists(context: Any, name: str, source: str, state: str) -> None:
    name = _model_arg(context, name)
    entry = next((m for m in _catalog(context) if m["name"] == name), None)
    assert entry is not None, _catalog(context)
    assert entry["source"] == source, entry
    assert (entry["problem"] is None) == (state == "ready"), entry
    sizes = getattr(context, "model_sizes", {})  # of the models that are not the GGUF file
    assert entry["size"] == sizes.get(name, _gguf().stat().st_size), entry


@then("the catalog is empty")
def step_catalog_empty(context: Any) -> None:
    assert _catalog(context) == [], _catalog(context)


@then("no downloaded model file is left but a resumable .partial")
def step_only_partial(context: Any) -> None:
    files = [p for p in (Path(context.models_dir) / "downloads").rglob("*") if p.is_file()]
    assert files and all(p.name.endswith(".partial") for p in files), files


@then("no downloaded model file is left")
def step_no_download_left(context: Any) -> None:
    root = Path(context.models_dir) / "downloads"
    files = [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
    assert files == [], files


@given("the model cache is fresh")
def step_fresh_cache(context: Any) -> None:
    # Downloads land in the model cache: give this scenario its own, but keep the shared
    # converted copy of the default model (same file, same conversion) by linking it.
    shared = Path(context.models_dir)
    own = context.home / "models"
    own.mkdir()
    if (shared / "converted").exists():
        (own / "converted").symlink_to(shared / "converted")
    context.env["RBEE_MODELS_DIR"] = str(own)
    context.models_dir = str(own)


@when("I delete the downloaded model file by hand")
def step_delete_by_hand(context: Any) -> None:
    files = [p for p in (Path(context.models_dir) / "downloads").rglob("*.gguf")]
    assert len(files) == 1, files
    files[0].unlink()


@given('a file that is not a model at "{name}"')
def step_not_a_model(context: Any, name: str) -> None:
    (context.home / name).write_bytes(b"this is not a GGUF file\n" * 100)


@given('a copy of the default model\'s GGUF file cut short at "{name}"')
def step_cut_model(context: Any, name: str) -> None:
    """Its header is whole (the hive reads it, the room check passes), half its weights are
    missing: only loading it, in the worker, finds that out."""
    data = _gguf().read_bytes()
    (context.home / name).write_bytes(data[: len(data) // 2])


@when("I restart the queen")
def step_restart_queen(context: Any) -> None:
    httpx.post(f"{context.queen_url}/shutdown", json={})
    context.queen.wait(30)
    context.execute_steps("Given a queen is running")


@then("the queen's metrics count {n:d} model download")
def step_download_metric(context: Any, n: int) -> None:
    text = httpx.get(f"{context.queen_url}/metrics", timeout=10).text
    assert f"rbee_model_downloads_total {float(n)}" in text, text
