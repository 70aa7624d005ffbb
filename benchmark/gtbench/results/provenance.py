"""What a record stores so its numbers can be reproduced: versions of the environment and
the distribution that provided each plugin."""

from __future__ import annotations

import os
import platform
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
