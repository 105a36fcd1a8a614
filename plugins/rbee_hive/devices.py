"""What this machine can run on: its CPU and RAM, and each NVIDIA GPU.

GPUs are read with ``nvidia-smi`` rather than torch, so that asking costs no torch import
(seconds and hundreds of MB) in the daemons that never run a model.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from rbee_core.messages import Device

__all__ = ["Device", "available_memory", "detect_devices"]


def _meminfo() -> tuple[int, int]:
    fields: dict[str, int] = {}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key] = int(value.split()[0]) * 1024
    except OSError:
        return 0, 0
    return fields.get("MemTotal", 0), fields.get("MemAvailable", 0)


def available_memory() -> int:
    """RAM available now (``MemAvailable``), in bytes."""
    return _meminfo()[1]


def _gpus() -> list[Device]:
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=index,name,memory.total,memory.free",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    devices = []
    for line in out.strip().splitlines():
        index, name, total, free = (part.strip() for part in line.split(","))
        mib = 1024 * 1024
        devices.append(Device(f"cuda:{index}", name, int(total) * mib, int(free) * mib))
    return devices


def detect_devices() -> list[Device]:
    """GPUs first (in index order), then the CPU."""
    total, free = _meminfo()
    cpu = Device("cpu", "CPU", total, free, cores=os.cpu_count())
    return [*_gpus(), cpu]
