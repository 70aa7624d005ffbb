"""A synthetic target for tests: coloured discs on a dark background, 16×16."""

from __future__ import annotations

from typing import ClassVar

import torch

from gtbench.api import ALLOW_OVERLAP, Dataset, DatasetInfo, Parameter


class DebugDataset(Dataset):
    """Procedural images (discs of random colour, radius and position); no download."""

    description = "synthetic coloured discs, 16x16, for tests (no download)"
    parameters: ClassVar = {
        "size": Parameter(200, "number of images"),
        "res": Parameter(16, "resolution"),
        "channels": Parameter(3, "image channels (1 or 3)"),
        "pool": Parameter(40, "shot pool size (evaluation = the rest)"),
        "validation": Parameter(0, "images after the pool held out for tuning (0: none)"),
        "allow_overlap": ALLOW_OVERLAP,
    }

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._images: torch.Tensor | None = None

    @property
    def info(self) -> DatasetInfo:
        p = self.params
        pool = min(p["pool"], p["size"])
        return DatasetInfo(p["res"], p["channels"], p["size"], pool, p["validation"])

    def images(self) -> torch.Tensor:
        if self._images is None:
            p = self.params
            rng = torch.Generator().manual_seed(7)
            n, res = p["size"], p["res"]
            ys, xs = torch.meshgrid(torch.arange(res), torch.arange(res), indexing="ij")
            centre = torch.rand((n, 2), generator=rng) * res * 0.6 + res * 0.2
            radius = torch.rand((n, 1, 1), generator=rng) * res * 0.25 + res * 0.15
            colour = torch.rand((n, p["channels"], 1, 1), generator=rng) * 0.8 + 0.2
            dist = (ys - centre[:, 0, None, None]) ** 2 + (xs - centre[:, 1, None, None]) ** 2
            disc = (dist < radius**2).float().unsqueeze(1)
            self._images = (disc * colour * 255).round().to(torch.uint8)
        return self._images
