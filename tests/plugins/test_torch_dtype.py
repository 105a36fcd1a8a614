"""The torch worker's dtype: bf16 where the hardware does it natively, RBEE_TORCH_DTYPE over all."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

import rbee_torch.backend as backend_module
import rbee_torch.dtype as dtype_module
from rbee_core.engine_options import EngineOptions
from rbee_core.errors import InvalidRequest
from rbee_core.models import LocalModel
from rbee_torch.backend import TorchBackend
from rbee_torch.dtype import (
    DTYPE_ENV,
    DtypeChoice,
    choose_dtype,
    cpu_bf16_features,
    cpuinfo_flags,
    parse_dtype,
)

X86_FLAGS = "fpu vme de pse tsc msr avx avx2 fma avx512f avx512bw avx512vl avx512_vnni"
CPUINFO = """processor\t: {n}
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: {flags}
bugs\t\t: spectre_v1 spectre_v2

"""


def fake_cpuinfo(tmp_path: Path, flags: str, cpus: int = 2) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text("".join(CPUINFO.format(n=n, flags=flags) for n in range(cpus)))
    return path


@pytest.fixture
def cpu(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """The CPU's bf16 features, as the test sets them (none by default); no env override."""
    monkeypatch.delenv(DTYPE_ENV, raising=False)
    features: list[tuple[str, ...]] = [()]
    monkeypatch.setattr(dtype_module, "cpu_bf16_features", lambda: features[0])
    return features


# -- the override ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("fp32", "fp32"),
        ("float32", "fp32"),
        ("bf16", "bf16"),
        ("bfloat16", "bf16"),
        ("fp16", "fp16"),
        ("float16", "fp16"),
        ("BF16", "bf16"),
        (" Float32 ", "fp32"),
    ],
)
def test_every_spelling_is_accepted(value: str, name: str) -> None:
    assert parse_dtype(value) == name


@pytest.mark.parametrize("value", ["int8", "float", "bf-16", "torch.bfloat16", "half", "32"])
def test_a_bad_value_names_the_variable_and_the_allowed_values(value: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        choose_dtype("cpu", value)
    message = raised.value.message
    assert DTYPE_ENV in message
    assert repr(value) in message
    for allowed in ("fp32", "float32", "bf16", "bfloat16", "fp16", "float16"):
        assert allowed in message


def test_the_override_wins_over_the_hardware(cpu: list[tuple[str, ...]]) -> None:
    cpu[0] = ("avx512_bf16",)
    choice = choose_dtype("cpu", "float32")
    assert choice == DtypeChoice(
        "fp32", f"{DTYPE_ENV}=float32; without it bf16: the CPU does bf16 natively, avx512_bf16"
    )
    cpu[0] = ()
    assert choose_dtype("cpu", "fp16").name == "fp16"
    assert choose_dtype("cpu", "bf16").reason.endswith("emulated and slower")


def test_an_override_equal_to_the_default_says_only_the_variable(
    cpu: list[tuple[str, ...]],
) -> None:
    assert choose_dtype("cpu", "fp32") == DtypeChoice("fp32", f"{DTYPE_ENV}=fp32")


def test_the_worker_reads_the_variable_once_into_its_engine_options(
    cpu: list[tuple[str, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DTYPE_ENV, "bfloat16")
    assert choose_dtype("cpu", EngineOptions.from_env().torch_dtype).name == "bf16"
    monkeypatch.setenv(DTYPE_ENV, "nope")
    with pytest.raises(InvalidRequest):
        choose_dtype("cpu", EngineOptions.from_env().torch_dtype)


def test_an_empty_variable_counts_as_unset(cpu: list[tuple[str, ...]]) -> None:
    assert EngineOptions.from_env({DTYPE_ENV: " "}).torch_dtype is None
    assert choose_dtype("cpu", EngineOptions.from_env({DTYPE_ENV: " "}).torch_dtype).name == "fp32"


def test_each_name_maps_to_its_torch_dtype() -> None:
    assert DtypeChoice("fp32", "").torch_dtype is torch.float32
    assert DtypeChoice("bf16", "").torch_dtype is torch.bfloat16
    assert DtypeChoice("fp16", "").torch_dtype is torch.float16


# -- by the hardware ---------------------------------------------------------------------


def test_a_cpu_with_native_bf16_runs_bf16(cpu: list[tuple[str, ...]]) -> None:
    cpu[0] = ("avx512_bf16", "amx_bf16")
    assert choose_dtype("cpu") == DtypeChoice(
        "bf16",
        f"the CPU does bf16 natively, avx512_bf16 and amx_bf16; {DTYPE_ENV} overrides",
    )


def test_a_cpu_without_native_bf16_runs_fp32(cpu: list[tuple[str, ...]]) -> None:
    assert choose_dtype("cpu") == DtypeChoice(
        "fp32",
        f"the CPU has no native bf16, where it is emulated and slower; {DTYPE_ENV} overrides",
    )


@pytest.mark.parametrize(
    ("native", "name"), [((True, "compute capability 9.0"), "bf16"), ((False, "x"), "fp32")]
)
def test_a_gpu_runs_bf16_only_if_native(
    cpu: list[tuple[str, ...]],
    monkeypatch: pytest.MonkeyPatch,
    native: tuple[bool, str],
    name: str,
) -> None:
    monkeypatch.setattr(dtype_module, "_cuda_bf16", lambda device: native)
    choice = choose_dtype("cuda:1")
    assert choice.name == name
    assert native[1] in choice.reason


@pytest.mark.parametrize(
    ("capability", "native"), [((7, 5), False), ((8, 0), True), ((9, 0), True)]
)
def test_native_bf16_on_cuda_is_ampere_or_later(
    monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int], native: bool
) -> None:
    asked: list[torch.device] = []

    def get_device_capability(device: torch.device) -> tuple[int, int]:
        asked.append(device)
        return capability

    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "get_device_capability", get_device_capability)
    major, minor = capability
    assert dtype_module._cuda_bf16("cuda:1") == (native, f"compute capability {major}.{minor}")
    assert asked == [torch.device("cuda:1")]  # the chosen GPU, not the current one


def test_other_devices_run_fp32(cpu: list[tuple[str, ...]]) -> None:
    assert choose_dtype("mps").name == "fp32"


# -- CPU feature detection ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "found"),
    [
        (X86_FLAGS, ()),
        (X86_FLAGS + " avx512_bf16", ("avx512_bf16",)),
        (X86_FLAGS + " amx_bf16 amx_tile amx_int8", ("amx_bf16",)),
        (X86_FLAGS + " amx_tile amx_bf16 avx512_bf16 avx512_fp16", ("avx512_bf16", "amx_bf16")),
        ("avx512_bf16_extra bf16", ()),  # whole flags only
    ],
)
def test_cpuinfo_flags_are_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: str, found: tuple[str, ...]
) -> None:
    monkeypatch.setattr(dtype_module, "_torch_cpu_capabilities", lambda: None)
    assert cpu_bf16_features(cpuinfo=fake_cpuinfo(tmp_path, flags)) == found


def test_cpuinfo_flags_reads_x86_flags_and_arm_features(tmp_path: Path) -> None:
    assert "avx512_vnni" in cpuinfo_flags(fake_cpuinfo(tmp_path, X86_FLAGS))
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm sve\nCPU part\t: 0xd40\n")
    assert cpuinfo_flags(arm) == {"fp", "asimd", "bf16", "i8mm", "sve"}


def test_an_unreadable_cpuinfo_means_no_native_bf16(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dtype_module, "_torch_cpu_capabilities", lambda: None)
    assert cpuinfo_flags(tmp_path / "missing") == frozenset()
    assert cpu_bf16_features(cpuinfo=tmp_path / "missing") == ()


def test_torchs_capabilities_come_first(tmp_path: Path) -> None:
    cpuinfo = fake_cpuinfo(tmp_path, X86_FLAGS + " avx512_bf16 amx_bf16")
    assert cpu_bf16_features({"avx512_bf16": False, "amx_bf16": False}, cpuinfo) == ()
    assert cpu_bf16_features({"avx512_bf16": False, "amx_bf16": True}, cpuinfo) == ("amx_bf16",)


def test_torchs_public_capabilities_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    capabilities = {"avx512_bf16": True, "amx_bf16": False, "architecture": "x86_64"}
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities, raising=False)
    assert dtype_module._torch_cpu_capabilities() is capabilities


def test_an_older_torch_falls_back_to_its_private_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert dtype_module._torch_cpu_capabilities() == {"avx512_bf16": False, "amx_bf16": True}
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    assert dtype_module._torch_cpu_capabilities() is None


def test_a_failing_torch_check_falls_back_to_cpuinfo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise RuntimeError("cpuinfo failed to initialise")

    monkeypatch.setattr(torch.cpu, "get_capabilities", broken, raising=False)
    assert dtype_module._torch_cpu_capabilities() is None
    cpuinfo = fake_cpuinfo(tmp_path, X86_FLAGS + " avx512_bf16")
    assert cpu_bf16_features(cpuinfo=cpuinfo) == ("avx512_bf16",)


# -- the backend -------------------------------------------------------------------------


def test_a_bad_value_fails_the_load_before_any_conversion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def convert(*args: object) -> Path:
        raise AssertionError("converted despite a bad RBEE_TORCH_DTYPE")

    monkeypatch.setattr(backend_module, "ensure_safetensors", convert)
    narrated: list[str] = []
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(InvalidRequest, match=DTYPE_ENV):
        TorchBackend(EngineOptions(torch_dtype="int4")).load(
            LocalModel("m", gguf, "gguf"),
            "cpu",
            lambda action, message, progress=None: narrated.append(action),
        )
    assert narrated == []


@pytest.mark.parametrize(("value", "dtype"), [("bf16", torch.bfloat16), ("fp32", torch.float32)])
def test_the_backend_loads_in_the_chosen_dtype_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, dtype: torch.dtype
) -> None:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    folder = tmp_path / "tiny"
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer = SimpleNamespace(eos_token_id=None, chat_template=None)
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", lambda *a, **k: tokenizer)
    options = EngineOptions.from_env({DTYPE_ENV: value, "RBEE_KV_CACHE": "1MiB"})
    narrated: list[tuple[str, str]] = []
    loaded = TorchBackend(options).load(
        LocalModel("tiny", folder, "safetensors"),
        "cpu",
        lambda action, message, progress=None: narrated.append((action, message)),
    )
    try:
        assert loaded.model.dtype is dtype
    finally:
        loaded.close()
    assert [action for action, _ in narrated] == ["load_start", "load_done"]
    assert narrated[0][1].startswith(f"loading tiny on cpu in {value} ({DTYPE_ENV}={value}")
