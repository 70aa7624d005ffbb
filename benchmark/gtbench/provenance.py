"""What a record stores so its numbers can be reproduced: versions of the environment and
the distribution that provided each plugin."""

from __future__ import annotations

import platform
import subprocess
import sys
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from gtbench import registry

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
        "git_commit": _git_commit(),
    }


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def plugin_provenance(cell: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Distribution, version and entry point of each plugin a cell uses."""
    used = {
        "source": cell["source"]["name"],
        "method": cell["method"]["name"],
        "dataset": cell["dataset"]["name"],
        "extractor": cell["eval"]["extractor"]["name"],
    }
    return {kind: registry.registry(kind).entry(name).provenance() for kind, name in used.items()}
