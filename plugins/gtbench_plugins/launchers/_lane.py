"""The process launcher's worker initialiser, in a module that imports nothing heavy so a
worker sets its environment (its GPU) before torch, let alone CUDA, starts."""

from __future__ import annotations

import os


def set_environment(environment: dict[str, str]) -> None:
    """Set this worker's environment variables (``CUDA_VISIBLE_DEVICES``, ...)."""
    os.environ.update(environment)
