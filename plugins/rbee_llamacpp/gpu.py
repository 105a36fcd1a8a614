"""Whether the installed llama.cpp can use a GPU, judged without loading it.

llama-cpp-python builds ggml's backends as shared libraries beside libllama
(``llama_cpp/lib``): a build with GPU support has ``libggml-cuda.so`` (or ``-hip``,
``-vulkan``, ``-metal``, ...). The hive reads that folder, since it must not load an
inference library; the worker then asks the loaded library itself
(``llama_supports_gpu_offload``) before it offloads.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = [
    "BUILD_HINT",
    "RPC_BUILD_HINT",
    "device_refusal",
    "gpu_index",
    "gpu_libraries",
    "library_folder",
    "rpc_built",
]

# ggml's GPU backends by library name; a device rbee calls ``cuda:N`` runs on any of them
# (ROCm's HIP and the rest number their GPUs from 0 as CUDA does).
_GPU_BACKENDS = ("cuda", "hip", "musa", "vulkan", "metal", "sycl", "opencl", "cann")
BUILD_HINT = (
    'CMAKE_ARGS="-DGGML_CUDA=on -DGGML_RPC=ON -DLLAVA_BUILD=OFF" pip install --force-reinstall '
    "--no-cache-dir --no-deps llama-cpp-python"
)

# A model split across hives needs ggml's RPC backend (``libggml-rpc``).
RPC_BUILD_HINT = (
    'CMAKE_ARGS="-DGGML_RPC=ON -DLLAVA_BUILD=OFF" pip install --force-reinstall '
    "--no-cache-dir --no-deps llama-cpp-python"
)


def library_folder() -> Path | None:
    """llama-cpp-python's folder of shared libraries (``llama_cpp/lib``)."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "lib"


def gpu_libraries(folder: Path | None = None) -> list[str]:
    """The GPU backends the installed llama.cpp was built with (``[]``: CPU only), from the
    libraries in ``folder`` (by default llama-cpp-python's own)."""
    folder = folder or library_folder()
    if folder is None or not folder.is_dir():
        return []
    names = {p.name for p in folder.iterdir()}
    return [
        kind
        for kind in _GPU_BACKENDS
        if any(n.startswith(f"libggml-{kind}.") or n == f"ggml-{kind}.dll" for n in names)
    ]


def gpu_index(device: str) -> int | None:
    """``cuda:N`` -> N; ``None`` for the CPU (``cpu``, ``auto`` is decided at load)."""
    kind, _, index = device.partition(":")
    if kind == "cuda" and index.isdigit():
        return int(index)
    return None


def device_refusal(device: str, built_with: list[str]) -> str | None:
    """Why llama.cpp, built with the GPU backends ``built_with``, cannot run on ``device``;
    ``None`` when it can."""
    if device in ("cpu", "auto"):
        return None
    if gpu_index(device) is None:
        return f"llama.cpp runs on cpu or cuda:N devices, not {device!r}"
    if not built_with:
        return (
            f"the installed llama.cpp was built without GPU support, so it cannot use "
            f"{device}; rebuild it with GPU support ({BUILD_HINT}) or use --backend torch"
        )
    return None


def rpc_built(folder: Path | None = None) -> bool:
    """Whether the installed llama.cpp has ggml's RPC backend (built with -DGGML_RPC=ON)."""
    folder = folder or library_folder()
    return folder is not None and folder.is_dir() and any(folder.glob("libggml-rpc.*"))
