"""Real face photos: the 100 Labeled Faces in the Wild crops shipped with scikit-image.

``skimage.data.lfw_subset()`` holds 200 grey 25×25 images, the first 100 faces and the
rest non-faces; only the faces are used. They are a real-photo target for the synthetic
DigiFace source, so they default to its 64 px. They stay grey (1 channel): the harness
trains a colour source on them repeated to RGB and judges its samples in grey (the
samples' channel mean against these images), so the colour the target cannot show does
not dominate the distance (``docs/leaderboard.md``, "The face pair"). No download: the
array ships inside scikit-image.

With a shot pool of 30, 70 evaluation faces remain: fewer than the 256 (or 96) feature
dimensions of ``shapes-cnn``, so FID is flagged as not valid and the pair is ranked by KID.
The shot pool is the one ``shapes-cnn`` was trained on (faces vs non-faces); the other 70
are held out of its training, which is why ``pool`` must stay 30 for that extractor.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from gtbench.api import ALLOW_OVERLAP, Dataset, DatasetInfo, Parameter

from ._images import grey_to_tensor, resize_planes

__all__ = ["LFWFaces", "load_lfw_faces"]

N_FACES = 100


def load_lfw_faces() -> np.ndarray:
    """The 100 LFW faces as float (100, 25, 25) in [0, 1]."""
    from skimage.data import lfw_subset

    return np.asarray(lfw_subset()[:N_FACES], dtype=np.float64)


class LFWFaces(Dataset):
    """100 real LFW faces; shots from a fixed pool of ``pool``, evaluation = the others."""

    description = "100 real LFW face crops from scikit-image (25x25 grey, upsampled)"
    # 2: grey by default (channels 1), so colour sources are judged in grey
    version = "2"
    parameters: ClassVar = {
        "res": Parameter(64, "resolution (25 px originals, PIL bicubic resize)"),
        "channels": Parameter(
            1, "image channels (1: grey, what the photos are; 3: grey repeated, judged as colour)"
        ),
        "pool": Parameter(30, "shot pool size (evaluation = the other faces)"),
        "allow_overlap": ALLOW_OVERLAP,
    }

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        if not 1 <= self.params["pool"] < N_FACES:
            raise ValueError(f"pool must be between 1 and {N_FACES - 1}, got {self.params['pool']}")
        self._images: torch.Tensor | None = None

    @property
    def info(self) -> DatasetInfo:
        p = self.params
        return DatasetInfo(p["res"], p["channels"], N_FACES, p["pool"])

    def images(self) -> torch.Tensor:
        if self._images is None:
            faces = resize_planes(load_lfw_faces() * 255.0, self.params["res"])
            self._images = grey_to_tensor(faces, self.params["channels"])
        return self._images
