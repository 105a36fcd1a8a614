"""llama.cpp on a GPU: what the installed build supports, judged without loading it, and
where a worker puts the model. This machine's build is CPU-only, so these check the probe on
made-up library folders, the refusals on the real build, and the choice of GPU;
benchmarks/gpu_check.sh runs the offload itself on a machine with a GPU."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rbee_core import hookimpl
from rbee_core.backends import Backend
from rbee_core.engine_options import EngineOptions
from rbee_core.errors import ModelUnavailable
from rbee_core.messages import HiveCapabilities
from rbee_core.models import LocalModel
from rbee_core.plugins import backend_for, create_plugin_manager
from rbee_llamacpp.backend import LlamaCppBackend, offload_to
from rbee_llamacpp.gpu import BUILD_HINT, device_refusal, gpu_index, gpu_libraries
from rbee_llamacpp.library import gpu_offload
from rbee_torch.backend import TorchBackend


def folder_with(folder: Path, *names: str) -> Path:
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes(b"")
    return folder


def test_the_build_is_read_from_its_libraries(tmp_path: Path) -> None:
    cpu = folder_with(tmp_path / "cpu", "libggml-cpu.so", "libllama.so")
    assert gpu_libraries(cpu) == []
    cuda = folder_with(tmp_path / "cuda", "libggml-cpu.so", "libggml-cuda.so.0", "libllama.so")
    assert gpu_libraries(cuda) == ["cuda"]
    assert gpu_libraries(folder_with(tmp_path / "vulkan", "libggml-vulkan.so")) == ["vulkan"]
    assert gpu_libraries(tmp_path / "missing") == []


def test_the_probe_never_claims_less_than_the_library() -> None:
    # A build that offloads has a GPU library beside libllama (CI's build has neither).
    assert gpu_libraries() or not gpu_offload()


def test_devices_a_build_runs_on() -> None:
    assert device_refusal("cpu", []) is None and device_refusal("auto", []) is None
    refused = device_refusal("cuda:1", [])
    assert refused is not None and "built without GPU support" in refused
    assert BUILD_HINT in refused and "--backend torch" in refused
    assert device_refusal("cuda:1", ["cuda"]) is None
    assert device_refusal("mps", ["metal"]) == "llama.cpp runs on cpu or cuda:N devices, not 'mps'"
    assert gpu_index("cuda:3") == 3 and gpu_index("cpu") is None and gpu_index("cuda") is None


def test_where_the_model_goes() -> None:
    assert offload_to("cpu", offload=True) is None
    assert offload_to("auto", offload=True) == 0 and offload_to("auto", offload=False) is None
    assert offload_to("cuda:2", offload=True) == 2
    with pytest.raises(ModelUnavailable, match="sees no GPU for cuda:2"):
        offload_to("cuda:2", offload=False)


def test_a_gpu_is_refused_before_anything_loads(tmp_path: Path) -> None:
    model = LocalModel("m", tmp_path / "never-read.gguf", "gguf")
    backend = LlamaCppBackend(built_with=[])  # as pip builds it without CMAKE_ARGS
    with pytest.raises(ModelUnavailable, match="built without GPU support, so it cannot use"):
        backend.footprint(model, "cuda:0", 2**34)
    with pytest.raises(ModelUnavailable, match="built without GPU support"):
        backend.load(model, "cuda:0", lambda *_: None)


class CpuOnlyBuild:
    @hookimpl
    def rbee_register_backends(self, register: Callable[[Backend], None]) -> None:
        register(TorchBackend())
        register(LlamaCppBackend(built_with=[]))


def test_auto_picks_a_backend_that_runs_on_the_device(tmp_path: Path) -> None:
    pm = create_plugin_manager(load_entrypoints=False)
    pm.register(CpuOnlyBuild(), name="backends")
    gguf = LocalModel("m", tmp_path / "m.gguf", "gguf")
    options = EngineOptions()
    assert backend_for(pm, gguf, "auto", options, "cpu").name == "llamacpp"
    # On a GPU this build cannot use, a GGUF model goes to torch, which converts it.
    assert backend_for(pm, gguf, "auto", options, "cuda:0").name == "torch"
    with pytest.raises(ModelUnavailable, match="built without GPU support"):
        backend_for(pm, gguf, "llamacpp", options, "cuda:0")


def test_capabilities_say_which_devices_each_backend_runs_on() -> None:
    caps = HiveCapabilities.from_json(
        {
            "name": "h",
            "url": "http://127.0.0.1:1",
            "backends": {"llamacpp": ["gguf"], "torch": ["gguf", "safetensors"]},
            "backend_devices": {"llamacpp": ["cpu"], "torch": ["cpu", "cuda:0"]},
        }
    )
    assert caps.backend_devices == {"llamacpp": ["cpu"], "torch": ["cpu", "cuda:0"]}
    assert HiveCapabilities.from_json(caps.to_json()) == caps
    old = HiveCapabilities.from_json({"name": "h", "url": "http://127.0.0.1:1"})
    assert old.backend_devices == {}
