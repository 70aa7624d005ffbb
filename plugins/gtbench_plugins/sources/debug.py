"""A tiny random-initialised 16×16 source for tests: seconds per cell, no downloads.

Its "pretrained" weights are a fixed seeded initialisation, so ``pretrained=True`` and
``pretrained=False`` differ (the ``scratch`` baseline uses another seed)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from gtbench.api import (
    Discriminator,
    Generator,
    Parameter,
    Source,
    SourceInfo,
    SourceNetworks,
)


class _Reshape(nn.Module):
    def __init__(self, *shape: int) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], *self.shape)


class DebugGenerator(Generator):
    def __init__(self, latent: int, width: int, channels: int) -> None:
        super().__init__(
            {
                "fc": nn.Sequential(
                    nn.Linear(latent, width * 4 * 4), nn.LeakyReLU(0.2), _Reshape(width, 4, 4)
                ),
                "up8": nn.Sequential(
                    nn.Upsample(scale_factor=2), nn.Conv2d(width, width, 3, 1, 1), nn.LeakyReLU(0.2)
                ),
                "up16": nn.Sequential(
                    nn.Upsample(scale_factor=2), nn.Conv2d(width, width, 3, 1, 1), nn.LeakyReLU(0.2)
                ),
                "to_rgb": nn.Sequential(nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh()),
            }
        )
        self.latent_shape = (latent,)


class DebugDiscriminator(Discriminator):
    def __init__(self, width: int, channels: int) -> None:
        super().__init__(
            {
                "from_rgb": nn.Sequential(nn.Conv2d(channels, width, 3, 1, 1), nn.LeakyReLU(0.2)),
                "down8": nn.Sequential(nn.Conv2d(width, width, 4, 2, 1), nn.LeakyReLU(0.2)),
                "down4": nn.Sequential(nn.Conv2d(width, width, 4, 2, 1), nn.LeakyReLU(0.2)),
                "head": nn.Sequential(nn.Flatten(), nn.Linear(width * 4 * 4, 1)),
            }
        )


class DebugSource(Source):
    """Random-init 16×16 G and D (seeded), for tests and the debug suite."""

    description = "tiny random-initialised 16x16 G+D for tests (no download)"
    parameters: ClassVar = {
        "width": Parameter(16, "channels of every layer"),
        "channels": Parameter(3, "image channels (1 or 3)"),
        "discriminator": Parameter(True, "ship a pretrained D (false: a G-only source)"),
        "seed": Parameter(1234, "seed of the 'pretrained' initialisation"),
    }

    @property
    def info(self) -> SourceInfo:
        return SourceInfo(
            resolution=16,
            channels=self.params["channels"],
            latent_shape=(32,),
            has_discriminator=self.params["discriminator"],
            architecture="debug",
        )

    def _build(self, seed: int) -> tuple[DebugGenerator, DebugDiscriminator]:
        torch.manual_seed(seed)
        width, channels = self.params["width"], self.params["channels"]
        return DebugGenerator(32, width, channels), DebugDiscriminator(width, channels)

    def load(self, *, pretrained: bool = True) -> SourceNetworks:
        seed = self.params["seed"] if pretrained else self.params["seed"] + 1
        with torch.random.fork_rng():
            generator, discriminator = self._build(seed)
        has_d = self.params["discriminator"] and pretrained
        return SourceNetworks(generator, discriminator if has_d else None)

    def new_discriminator(self) -> Discriminator:
        with torch.random.fork_rng():
            return self._build(self.params["seed"] + 2)[1]
