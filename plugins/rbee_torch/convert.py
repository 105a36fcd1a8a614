"""GGUF to safetensors, once per model: de-quantising a GGUF takes ~30 s on a small CPU,
loading the converted safetensors takes well under a second."""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import time
from pathlib import Path

from rbee_core.models import LocalModel
from rbee_core.narration import MODEL_CONVERTED, Narrate
from rbee_core.paths import models_dir
from rbee_core.safe_files import owned_path

__all__ = ["converted_path", "ensure_safetensors"]

_COMPLETE = ".complete"


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def converted_path(model: LocalModel) -> Path:
    """Where the safetensors copy of a GGUF file lives in the model cache.

    Keyed by the file's sha256 (not its name and size, which a replaced file can keep), so
    a changed file is converted again and the same file in two environments converts once.
    """
    return models_dir() / "converted" / f"{model.path.stem}-{_sha256(model.path)[:32]}"


def ensure_safetensors(model: LocalModel, narrate: Narrate) -> Path:
    """The converted folder for a GGUF model, converting it first if needed.

    Safe against concurrent workers (a file lock) and crashes (written to a temporary folder
    and renamed into place only when complete, so a half-written copy is never loaded).
    """
    target = converted_path(model)
    if (target / _COMPLETE).exists():
        return target
    root = target.parent

    def inside(path: Path) -> Path:  # every write and delete stays in the converted folder
        return owned_path(path, root, what="the models folder's converted copies")

    root.mkdir(parents=True, exist_ok=True)
    with open(inside(target.with_name(target.name + ".lock")), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / _COMPLETE).exists():  # another worker converted it while we waited
            return target
        narrate(
            "convert_start",
            f"converting {model.path.name} from GGUF to safetensors, once; "
            "this takes about half a minute",
        )
        started = time.monotonic()
        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(inside(tmp), ignore_errors=True)
        shutil.rmtree(inside(target), ignore_errors=True)
        _convert(model.path, inside(tmp))
        (inside(tmp) / _COMPLETE).touch()
        inside(tmp).rename(inside(target))
        narrate(
            MODEL_CONVERTED,
            f"converted {model.path.name} in {time.monotonic() - started:.1f} s; "
            "later loads use the cached copy",
        )
    return target


def _convert(gguf: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # transformers marks GGUF-loaded models as quantised and refuses to save them, though the
    # weights are already de-quantised to plain tensors: drop the marker to save them.
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
