"""The device a run asks for (``trainer.device``), refused when it is not there, and what it used.

``cuda`` without a usable GPU is :class:`DeviceUnavailable`, never a silent run on the CPU
(accelerate's ``Accelerator(cpu=False)`` would fall back to it). ``auto`` takes CUDA when there is
one; the paper's experiments (``configs/experiment/table*.yaml``) ask for ``cuda``, so a GPU box with
a broken driver stops at once instead of spending a table's GPU-hours on its CPU; ``trainer.device=cpu``
runs them on the CPU on purpose.
"""
from __future__ import annotations

import os
import platform
import subprocess

import torch

CHOICES = ("auto", "cpu", "cuda")


class DeviceUnavailable(RuntimeError):
    """The device the config asks for is not usable on this machine."""


def resolve(requested: str, key: str = "trainer.device") -> str:
    """``cpu`` or ``cuda`` for ``trainer.device`` (auto | cpu | cuda; ``key``: how the command names it);
    :class:`DeviceUnavailable` for ``cuda`` without a usable GPU."""
    requested = str(requested)
    if requested not in CHOICES:
        raise ValueError(f"{key} must be one of {', '.join(CHOICES)}, got {requested!r}")
    if requested == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if requested == "auto":
        return "cpu"
    raise DeviceUnavailable(f"{key}=cuda but CUDA is not usable here ({_why_no_cuda()}); run on a "
                            f"machine with a working GPU, or pass {key}=cpu to run on the CPU on purpose")


def _why_no_cuda() -> str:
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is built without CUDA"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return (f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no GPU: check the driver (nvidia-smi)"
            + (f" and CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""))


def describe(device: torch.device, mixed_precision: str, processes: int = 1) -> dict:
    """What the run actually used, for its record."""
    out = {"type": device.type, "processes": int(processes), "mixed_precision": str(mixed_precision),
           "torch": torch.__version__}
    if device.type == "cuda":
        out.update(name=torch.cuda.get_device_name(device), count=torch.cuda.device_count(),
                   cuda=torch.version.cuda, driver=driver_version())
    else:
        out.update(name=platform.processor() or platform.machine(), count=0, threads=torch.get_num_threads(),
                   bf16_native=cpu_bf16_native())
    return out


# torch.cpu.get_capabilities()'s names for native bf16 arithmetic: x86 (AVX512-BF16, AMX) and Arm
BF16_CAPABILITIES = ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16")


def cpu_bf16_native() -> bool | None:
    """Whether this CPU does bf16 arithmetic natively (AVX512-BF16 or AMX on x86, BF16 on Arm), where
    bf16 autocast is faster than float32; None where torch cannot say. Without it oneDNN emulates bf16
    and autocast is slower."""
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is None:
        return None
    caps = capabilities()
    known = [k for k in BF16_CAPABILITIES if k in caps]
    return any(bool(caps[k]) for k in known) if known else None


def driver_version() -> str | None:
    """The NVIDIA driver's version (nvidia-smi; torch does not report it), or None."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if out.returncode == 0 and lines else None
