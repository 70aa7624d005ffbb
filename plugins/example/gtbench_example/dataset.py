"""Procedural stripes: a target that needs no download."""

from typing import ClassVar

import torch

from gtbench.api import Dataset, DatasetInfo, Parameter


class Stripes(Dataset):
    description = "vertical stripes of random width and colour"
    parameters: ClassVar = {
        "size": Parameter(120, "number of images"),
        "res": Parameter(16, "resolution"),
    }

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(self.params["res"], 3, self.params["size"], shot_pool=30)

    def images(self) -> torch.Tensor:
        n, res = self.params["size"], self.params["res"]
        rng = torch.Generator().manual_seed(0)
        period = torch.randint(2, res // 2, (n, 1, 1, 1), generator=rng)
        columns = torch.arange(res).view(1, 1, 1, res)
        on = ((columns // period) % 2).float().expand(n, 1, res, res)
        colour = torch.rand((n, 3, 1, 1), generator=rng)
        return (on * colour * 255).round().to(torch.uint8)
