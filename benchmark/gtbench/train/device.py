"""Which device a run uses: CUDA when available, ``GTBENCH_DEVICE`` overriding."""

from __future__ import annotations

import os

import torch


def default_device() -> torch.device:
    """CUDA when available (``GTBENCH_DEVICE`` overrides), else CPU."""
    wanted = os.environ.get("GTBENCH_DEVICE")
    if wanted:
        return torch.device(wanted)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
