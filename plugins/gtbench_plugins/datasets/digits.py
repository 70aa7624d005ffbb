"""Handwritten digits (scikit-learn's 1797 8×8 images): a far-domain target.

For the silhouette source pretrained on animals, digits share the white-on-black look
but none of the shapes, so they test how far a method can move a generator. No download:
the data ship inside scikit-learn. Ink intensity 0-16 is scaled to 0-255 (white ink).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from gtbench.api import ALLOW_OVERLAP, Dataset, DatasetInfo, Parameter

from ._images import grey_to_tensor, resize_planes

__all__ = ["Digits"]


class Digits(Dataset):
    """1797 handwritten digits upsampled from 8×8; shots from a fixed pool of ``pool``, the
    next ``validation`` digits for tuning, the rest for evaluation."""

    description = "scikit-learn handwritten digits (1797, 8x8 upsampled), far-domain target"
    parameters: ClassVar = {
        "res": Parameter(32, "resolution (8 px originals, PIL bicubic resize)"),
        "channels": Parameter(1, "image channels (1, or 3 by repetition)"),
        "pool": Parameter(100, "shot pool size"),
        "validation": Parameter(
            300, "digits held out for tuning (`gtbench tune`); evaluation = the rest"
        ),
        "allow_overlap": ALLOW_OVERLAP,
    }
    # 2: 300 digits moved from the evaluation set to the validation split
    version = "2"

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._images: torch.Tensor | None = None
        self._size = 1797
        if not 1 <= self.params["pool"] < self._size:
            raise ValueError(f"pool must be between 1 and {self._size - 1}")
        if not 0 <= self.params["validation"] < self._size - self.params["pool"]:
            raise ValueError("validation must leave at least one evaluation image")

    @property
    def info(self) -> DatasetInfo:
        p = self.params
        return DatasetInfo(p["res"], p["channels"], self._size, p["pool"], p["validation"])

    def images(self) -> torch.Tensor:
        if self._images is None:
            from sklearn.datasets import load_digits

            planes = np.asarray(load_digits().images, dtype=np.float64) * (255.0 / 16.0)
            if len(planes) != self._size:
                raise RuntimeError(f"scikit-learn's digits have {len(planes)} images, not 1797")
            self._images = grey_to_tensor(
                resize_planes(planes, self.params["res"]), self.params["channels"]
            )
        return self._images
