"""What a record stores so its numbers can be reproduced: versions of the environment, the
hardware and instruction sets that computed them, and the distribution that provided each
plugin."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from gtbench.plugin import registry

_PACKAGES = ("gtbench", "torch", "torchvision", "torch-fidelity", "timm", "numpy", "scipy")


@cache
def environment() -> dict[str, Any]:
    """Python, platform, key package versions, the device and the git commit if any."""
    import torch

    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        **git_state(Path(__file__).resolve().parent),
    }


# Environment variables that choose the instruction sets of torch's own CPU kernels (ATen),
# oneDNN's (convolutions) and MKL's (matrix products): they change floating-point results.
ISA_VARIABLES = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
)
# Thread counts of the OpenMP/BLAS libraries: a sum split over more threads rounds
# differently (FID's matrix square root too, in its 14th digit).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# The lowest instruction set of each, and MKL's cross-CPU reproducible mode: CPU results
# that do not depend on which x86-64 CPU computes them, at a cost (docs/results.md).
PORTABLE_CPU = {
    "ATEN_CPU_CAPABILITY": "default",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "MKL_CBWR": "COMPATIBLE",
}


# CPU features that decide which kernels oneDNN and MKL pick (they choose on their own).
_CPU_FEATURES = (
    "sse4_1", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
    "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "asimd", "sve",
)  # fmt: skip


def cpu_info() -> dict[str, Any]:
    """The CPU: model name, vendor/family/model/stepping (``/proc/cpuinfo``; elsewhere what
    ``platform`` knows) and which vector-instruction features it has."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), " ".join(value.split()))
    except OSError:
        pass
    model = fields.get("model name") or fields.get("Model") or fields.get("cpu model")
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    ident = [fields.get(k) for k in ("vendor_id", "cpu family", "model", "stepping")]
    return {
        "cpu": model or platform.processor() or platform.machine() or "unknown",
        "cpu_id": " ".join(v for v in ident if v) or None,
        "cpu_features": [name for name in _CPU_FEATURES if name in flags],
    }


def gpu_driver() -> str | None:
    """The NVIDIA driver's version, from ``/proc/driver/nvidia/version`` or ``nvidia-smi``."""
    try:
        found = nvidia_driver_of(Path("/proc/driver/nvidia/version").read_text(errors="replace"))
        if found:
            return found
    except OSError:
        pass
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.split()
    return lines[0] if done.returncode == 0 and lines else None


def nvidia_driver_of(text: str) -> str | None:
    """The driver version in the text of ``/proc/driver/nvidia/version``."""
    found = re.search(r"Kernel Module(?: for \S+)?\s+([0-9][0-9.]*)", text)
    return found.group(1) if found else None


def hardware(device: Any) -> dict[str, Any]:
    """What computed a cell's numbers, beyond package versions: the CPU (model, vendor,
    family, model number and stepping, vector features), the instruction set torch's CPU
    kernels actually use (``get_cpu_capability``: AVX512, AVX2 or DEFAULT) and the
    variables pinning oneDNN's and MKL's, and the OpenMP/BLAS thread variables; on a GPU
    its name, compute capability, driver and cuDNN. Results are bit-identical only between
    records whose hardware (and ``torch_threads``) agree."""
    import torch

    device = torch.device(device)
    found: dict[str, Any] = {
        **cpu_info(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "isa_settings": {name: os.environ[name] for name in ISA_VARIABLES if name in os.environ},
        "thread_settings": {
            name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ
        },
    }
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        properties = torch.cuda.get_device_properties(index)
        found.update(
            gpu=properties.name,
            gpu_capability=f"{properties.major}.{properties.minor}",
            gpu_driver=gpu_driver(),
            cudnn=torch.backends.cudnn.version(),
        )
    return found


def machine(environment: dict[str, Any] | None) -> str:
    """One line naming the hardware class of a record's ``environment``: records with the
    same line computed their numbers alike (given the same ``torch_threads``). A GPU by
    name and driver; a CPU by model (and vendor, family, model number, stepping) and the
    instruction set its kernels used, or as
    *portable x86* under :data:`PORTABLE_CPU` (the model does not matter then).
    ``unknown`` for records that predate ``environment.hardware``."""
    found = (environment or {}).get("hardware")
    if not isinstance(found, dict):
        return "unknown"
    if found.get("gpu"):
        return f"{found['gpu']} (driver {found.get('gpu_driver') or '?'})"
    if is_portable(found):
        return "portable x86"
    ident = f" [{found['cpu_id']}]" if found.get("cpu_id") else ""
    return f"{found.get('cpu', '?')}{ident} ({found.get('cpu_capability', '?')})"


def use_portable_cpu() -> None:
    """Set :data:`PORTABLE_CPU` for this process and the workers it starts. Torch, oneDNN
    and MKL read these when they first compute, so this must come before any tensor
    work; refused (one line) when torch already chose another instruction set."""
    os.environ.update(PORTABLE_CPU)
    os.environ.pop("DNNL_MAX_CPU_ISA", None)  # oneDNN's older name; ONEDNN_ wins anyway
    if "torch" in sys.modules:
        import torch

        used = torch.backends.cpu.get_cpu_capability()
        if used != "DEFAULT":
            from gtbench.errors import UsageError

            raise UsageError(
                f"--portable-cpu: torch already uses {used} kernels in this process; set "
                + " ".join(f"{k}={v}" for k, v in PORTABLE_CPU.items())
                + " in the environment before starting it"
            )


def current_machine() -> str:
    """:func:`machine` of a cell run here now (on the device a run would use)."""
    from gtbench.train.device import default_device

    return machine({"hardware": hardware(default_device())})


def is_portable(found: dict[str, Any]) -> bool:
    """Whether ``hardware()`` ran under :data:`PORTABLE_CPU`: torch's kernels at DEFAULT
    (the capability actually used), oneDNN capped at SSE4.1, MKL in COMPATIBLE mode."""
    settings = {k: str(v).upper() for k, v in (found.get("isa_settings") or {}).items()}
    onednn = settings.get("ONEDNN_MAX_CPU_ISA", settings.get("DNNL_MAX_CPU_ISA"))
    return (
        found.get("cpu_capability") == "DEFAULT"
        and onednn == "SSE41"
        and settings.get("MKL_CBWR") == "COMPATIBLE"
    )


# The code whose edits can change a number; results folders (some tracked) are not code.
_CODE_PATHS = ("benchmark", "plugins", "pyproject.toml")


def git_state(here: Path) -> dict[str, Any]:
    """The commit of the checkout that holds ``here`` and whether its code (tracked files
    under ``benchmark/``, ``plugins/`` and ``pyproject.toml``) differs from that commit:
    a commit alone would claim code that did not make the numbers. Both None outside a
    git checkout (an installed wheel)."""
    root = _git(here, "rev-parse", "--show-toplevel")
    commit = _git(here, "rev-parse", "HEAD")
    if not root or not commit:
        return {"git_commit": None, "git_dirty": None}
    status = ("status", "--porcelain", "--untracked-files=no", "--", *_CODE_PATHS)
    changes = _git(Path(root), *status)
    return {"git_commit": commit, "git_dirty": None if changes is None else bool(changes)}


def _git(where: Path, *args: str) -> str | None:
    """git's stripped output, or None when git is missing or fails.

    Read-only: without optional locks (``--no-optional-locks``, ``GIT_OPTIONAL_LOCKS=0``)
    ``git status`` never refreshes and rewrites the user's ``.git/index``, nor takes
    ``index.lock`` from under a git command of theirs."""
    command = ["git", "--no-optional-locks", *args]
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        out = subprocess.run(
            command, cwd=where, capture_output=True, text=True, timeout=10, env=env
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def plugin_provenance(cell: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Distribution, version and entry point of each plugin a cell uses."""
    used = {
        "source": cell["source"]["name"],
        "method": cell["method"]["name"],
        "dataset": cell["dataset"]["name"],
        "extractor": cell["eval"]["extractor"]["name"],
    }
    return {kind: registry.registry(kind).entry(name).provenance() for kind, name in used.items()}
