"""Shared test set-up: no hub access, one thread per test process (2-core machines)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["COLUMNS"] = "200"  # rich tables unfolded in captured output

import torch  # noqa: E402

torch.set_num_threads(1)
