"""Steps of the file-safety scenarios: a download whose name climbs out of the models
folder, a ``file:`` model whose removal must delete nothing, ``pypi:`` references that
would import a module, and a pinned cached download changed on disk."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from behave import given, then, when

from steps.support.model_server import ModelServer
from steps.support.placeholders import default_gguf

_MARKER = "imported.marker"


@given('a host on loopback serves the default model\'s GGUF file at "{path}"')
def step_model_server_at(context: Any, path: str) -> None:
    context.model_server = ModelServer(default_gguf())
    context.model_server.any_path = True  # the path is sent as written, %2F and all
    context.add_cleanup(context.model_server.close)
    context.model_url = f"http://127.0.0.1:{context.model_server.httpd.server_port}{path}"


def _outside_models(context: Any, name: str) -> list[Path]:
    models = Path(context.models_dir).resolve()
    # The scenario's state dir and the folder above it: where ../ from the models folder go.
    found = [*context.home.rglob(name), *context.home.parent.glob(name)]
    return [p for p in found if models not in p.resolve().parents]


@then('nothing named "{name}" was created outside the models folder')
def step_nothing_outside(context: Any, name: str) -> None:
    assert _outside_models(context, name) == [], _outside_models(context, name)


@then("the models folder's downloads hold one \"{name}\" with the default model's bytes")
def step_download_inside(context: Any, name: str) -> None:
    downloads = Path(context.models_dir) / "downloads"
    files = sorted(p for p in downloads.rglob("*") if p.is_file() and p.suffix == ".gguf")
    assert [p.name for p in files] == [name], files
    assert files[0].parent.parent == downloads, files  # downloads/<hash of the URL>/NAME
    digest = hashlib.sha256(files[0].read_bytes()).hexdigest()
    assert digest == hashlib.sha256(default_gguf().read_bytes()).hexdigest(), files[0]


@given('a canary folder "{folder}" beside the models folder holds "{model}" and "{other}"')
def step_canary(context: Any, folder: str, model: str, other: str) -> None:
    canary = Path(context.models_dir).parent / folder
    canary.mkdir()
    (canary / model).write_bytes(b"GGUF the user's own model, never rbee's to delete\n")
    (canary / other).write_text("the user's notes\n")
    context.canary = canary / model


def _canary_ref(context: Any) -> str:
    # Textually under the models folder, really beside it: the path a check on the text
    # would take for one of rbee's downloads.
    return f"file:{context.models_dir}/../{context.canary.parent.name}/{context.canary.name}"


@when("I add the canary's model to the catalog by a path through the models folder")
def step_add_canary(context: Any) -> None:
    context.execute_steps(f"When I run rbee-keeper model download {_canary_ref(context)}")


@when("I remove the canary's model by that same path")
def step_remove_canary(context: Any) -> None:
    context.execute_steps(f"When I run rbee-keeper model rm {_canary_ref(context)}")


@then('the canary folder "{folder}" still holds "{model}" and "{other}"')
def step_canary_survives(context: Any, folder: str, model: str, other: str) -> None:
    canary = Path(context.models_dir).parent / folder
    assert (canary / model).is_file() and (canary / other).is_file(), f"{canary} was deleted"
    assert (canary / model).read_bytes().startswith(b"GGUF the user's own model"), canary
    assert (canary / other).read_text() == "the user's notes\n", canary


@given('a module "{module}" that leaves a marker file when imported is on the queen\'s Python path')
def step_canary_module(context: Any, module: str) -> None:
    lib = context.home / "pylib"
    package = lib / module
    package.mkdir(parents=True)
    marker = context.home / _MARKER
    (package / "__init__.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('imported by ' + __name__)\n"
    )
    (package / "m.gguf").write_bytes(b"GGUF not a model\n")
    paths = [str(lib), *filter(None, [context.env.get("PYTHONPATH")])]
    context.env["PYTHONPATH"] = os.pathsep.join(paths)


@then('the module "{module}" was never imported')
def step_never_imported(context: Any, module: str) -> None:
    marker = context.home / _MARKER
    assert not marker.exists(), f"{module} was imported: {marker.read_text()}"


@when("the downloaded model file is changed on disk, keeping its size")
def step_tamper(context: Any) -> None:
    files = list((Path(context.models_dir) / "downloads").rglob("*.gguf"))
    assert len(files) == 1, files
    size = files[0].stat().st_size
    with open(files[0], "r+b") as f:  # a stretch of the weights, well past the header
        f.seek(size // 2)
        f.write(b"\xa5" * 4096)
    assert files[0].stat().st_size == size
