"""The dtype a torch worker loads its model in: bf16 where the hardware does bf16 natively.

- CUDA: bf16 on GPUs with native bf16 (Ampere and later, compute capability >= 8.0; every
  ROCm GPU), else fp32. Older GPUs only emulate bf16.
- CPU: bf16 on CPUs with native bf16 instructions (``avx512_bf16`` or AMX ``amx_bf16``),
  else fp32: elsewhere bf16 is converted to fp32 and back around every operation, which is
  slower than fp32 itself. The features come from torch's own CPU detection (CPUID, through
  the cpuinfo library), falling back to the flags in ``/proc/cpuinfo`` on a torch without
  it.
- Any other device: fp32.

``RBEE_TORCH_DTYPE`` (``fp32``/``float32``, ``bf16``/``bfloat16``, ``fp16``/``float16``)
overrides the choice; any other value is an ``InvalidRequest`` naming the variable.

Nothing here imports torch at module level: every rbee process loads the torch plugin, and
only workers should pay for importing torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rbee_core.errors import InvalidRequest

if TYPE_CHECKING:
    import torch

__all__ = [
    "DTYPE_ENV",
    "DtypeChoice",
    "DtypeName",
    "choose_dtype",
    "cpu_bf16_features",
    "cpuinfo_flags",
    "parse_dtype",
]

DTYPE_ENV = "RBEE_TORCH_DTYPE"

DtypeName = Literal["fp32", "bf16", "fp16"]

_ALIASES: dict[str, DtypeName] = {
    "fp32": "fp32",
    "float32": "fp32",
    "bf16": "bf16",
    "bfloat16": "bf16",
    "fp16": "fp16",
    "float16": "fp16",
}
# The CPU features that make bf16 matrix multiplication native (x86: AVX-512 BF16, AMX).
_CPU_BF16 = ("avx512_bf16", "amx_bf16")


@dataclass(frozen=True, slots=True)
class DtypeChoice:
    """A dtype and why it was chosen, in words for the worker's narration."""

    name: DtypeName
    reason: str

    @property
    def torch_dtype(self) -> torch.dtype:
        import torch

        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.name]


def parse_dtype(value: str) -> DtypeName:
    """``"bfloat16"`` -> ``"bf16"``; case and surrounding spaces do not matter."""
    name = _ALIASES.get(value.strip().lower())
    if name is None:
        raise InvalidRequest(
            f"{DTYPE_ENV} must be one of {', '.join(_ALIASES)} (or unset, to choose by the "
            f"hardware), not {value!r}"
        )
    return name


def cpuinfo_flags(path: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU feature flags listed in ``path`` (x86 ``flags``, ARM ``Features``); empty if
    the file cannot be read."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return frozenset()
    flags: set[str] = set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return frozenset(flags)


def _torch_cpu_capabilities() -> Mapping[str, object] | None:
    """torch's view of the CPU's features, or None on a torch that cannot say."""
    try:
        import torch.cpu
    except ImportError:
        return None
    try:
        get_capabilities = getattr(torch.cpu, "get_capabilities", None)
        if get_capabilities is not None:  # public in recent torch (2.13 has it)
            capabilities: Mapping[str, object] = get_capabilities()
            return capabilities
        # Older torch has only private checks, and none for AMX-BF16 itself; every CPU with
        # AMX tiles so far (Sapphire Rapids and later) has AMX-BF16.
        avx512_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
        amx_tile = getattr(torch.cpu, "_is_amx_tile_supported", None)
        if avx512_bf16 is None or amx_tile is None:
            return None
        return {"avx512_bf16": bool(avx512_bf16()), "amx_bf16": bool(amx_tile())}
    except Exception:  # a check that fails says nothing: fall back to /proc/cpuinfo
        return None


def cpu_bf16_features(
    capabilities: Mapping[str, object] | None = None, cpuinfo: Path = Path("/proc/cpuinfo")
) -> tuple[str, ...]:
    """This CPU's native bf16 features (``avx512_bf16``, ``amx_bf16``); empty if it has none.

    From ``capabilities`` (by default torch's CPU detection), else from ``cpuinfo``'s flags.
    """
    if capabilities is None:
        capabilities = _torch_cpu_capabilities()
    if capabilities is not None:
        return tuple(f for f in _CPU_BF16 if capabilities.get(f) is True)
    flags = cpuinfo_flags(cpuinfo)
    return tuple(f for f in _CPU_BF16 if f in flags)


def _cuda_bf16(device: str) -> tuple[bool, str]:
    """Whether this GPU does bf16 natively, and what it is (its compute capability)."""
    import torch

    if torch.version.hip:
        return True, "a ROCm GPU"
    major, minor = torch.cuda.get_device_capability(torch.device(device))
    # What torch.cuda.is_bf16_supported(including_emulation=False) checks, for this device
    # rather than the current one.
    return major >= 8, f"compute capability {major}.{minor}"


def _by_hardware(device: str) -> DtypeChoice:
    if device.startswith("cuda"):
        native, what = _cuda_bf16(device)
        if native:
            return DtypeChoice("bf16", f"the GPU does bf16 natively, {what}")
        return DtypeChoice("fp32", f"the GPU has no native bf16, {what}; fp16 is native there")
    if device == "cpu":
        features = cpu_bf16_features()
        if features:
            return DtypeChoice("bf16", f"the CPU does bf16 natively, {' and '.join(features)}")
        return DtypeChoice("fp32", "the CPU has no native bf16, where it is emulated and slower")
    return DtypeChoice("fp32", f"no native-bf16 check for {device}")


def choose_dtype(device: str, asked: str | None = None) -> DtypeChoice:
    """The dtype to load a model in on ``device`` (``"cpu"``, ``"cuda:0"``...): ``asked``
    (``RBEE_TORCH_DTYPE``, from ``EngineOptions``) if given, else by the hardware.

    A bad ``asked`` raises ``InvalidRequest``.
    """
    value = (asked or "").strip()
    name = parse_dtype(value) if value else None
    default = _by_hardware(device)
    if name is None:
        return DtypeChoice(default.name, f"{default.reason}; {DTYPE_ENV} overrides")
    if name == default.name:
        return DtypeChoice(name, f"{DTYPE_ENV}={value}")
    return DtypeChoice(name, f"{DTYPE_ENV}={value}; without it {default.name}: {default.reason}")
