"""Whether bf16 autocast helps on this machine.

On a GPU, and on CPUs with native bf16 arithmetic (AVX512-BF16, AMX-BF16, Arm BF16), bf16
autocast speeds a StyleGAN2 step up; on other CPUs torch emulates it, and the same step
measured 20x *slower* than fp32 on an AVX2-only CPU (142.6 s against 7.1 s, 32 px, batch
8, 2 threads). The source therefore falls back to fp32 there, with a warning and a note in
the record."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

# /proc/cpuinfo flags of native bf16 arithmetic (x86: AVX512-BF16, AMX; Arm: BF16)
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def cpu_capability() -> str:
    """torch's CPU kernel level (``AVX512``, ``AVX2``, ``DEFAULT``, ...) and the native bf16
    flags found, e.g. ``AVX2 (no native bf16)`` or ``AVX512 + amx_bf16, avx512_bf16``."""
    flags = cpu_bf16_flags()
    native = " + " + ", ".join(flags) if flags else " (no native bf16)"
    return torch.backends.cpu.get_cpu_capability() + native


@functools.cache
def cpu_bf16_flags() -> tuple[str, ...]:
    """The native-bf16 flags of this CPU (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ()
    words: set[str] = set()
    for line in text.splitlines():
        if line.split(":", 1)[0].strip() in ("flags", "Features"):
            words.update(line.split(":", 1)[1].split())
    return tuple(sorted(flag for flag in BF16_FLAGS if flag in words))


def runs_on_cpu() -> bool:
    """Whether cells will run on the CPU (``GTBENCH_DEVICE``, else no CUDA available)."""
    device = os.environ.get("GTBENCH_DEVICE", "").strip()
    if device:
        return device.startswith("cpu")
    return not torch.cuda.is_available()


def bf16_fallback_reason() -> str | None:
    """Why bf16 would be emulated (slow) here, or None when it is native or on a GPU."""
    if not runs_on_cpu() or cpu_bf16_flags():
        return None
    return (
        f"fp32: bf16 was asked for, but this CPU ({cpu_capability()}) has no native bf16 "
        "arithmetic, where bf16 autocast runs ~20x slower than fp32"
    )
