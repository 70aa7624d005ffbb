"""Generators and discriminators as ordered, named blocks, so a method can say "freeze the
first k discriminator blocks" or "read the features of generator block k" once, for every
architecture."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["BlockNetwork", "Discriminator", "Generator"]


class BlockNetwork(nn.Module):
    """A generator or discriminator seen as an ordered sequence of named blocks.

    Order follows the data flow: for a generator from the latent to the image (low to
    high resolution), for a discriminator from the image to the logit (high to low
    resolution). So "the first k discriminator blocks" are FreezeD's high-resolution
    blocks on every architecture.

    The default ``forward_features`` runs the blocks in sequence; architectures that are
    not a plain chain (StyleGAN2's per-block styles and skips) override it, still
    returning one feature tensor per block, in block order.
    """

    def __init__(self, blocks: Mapping[str, nn.Module] | None = None) -> None:
        super().__init__()
        self.blocks = nn.ModuleDict(blocks or {})

    def named_blocks(self) -> list[tuple[str, nn.Module]]:
        """The blocks in data-flow order."""
        return list(self.blocks.items())

    def block_names(self) -> list[str]:
        return list(self.blocks.keys())

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run the network; return its output and each block's output in block order."""
        features = []
        for block in self.blocks.values():
            x = block(x)
            features.append(x)
        return x, features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]


class Generator(BlockNetwork):
    """A generator: latent in, image in [-1, 1] (N×C×H×W) out."""

    latent_shape: tuple[int, ...] = ()

    def sample_latent(
        self, n: int, *, generator: torch.Generator | None = None, device: Any = None
    ) -> torch.Tensor:
        """Draw ``n`` latents from the prior (standard normal by default)."""
        device = device if device is not None else _module_device(self)
        return torch.randn((n, *self.latent_shape), generator=generator, device="cpu").to(device)

    def sample_noise(self, seeds: Sequence[int], *, device: Any = None) -> dict[str, Any]:
        """Forward keyword arguments that carry every random draw a forward pass would
        otherwise make itself (StyleGAN2's per-layer noise maps), one sample per seed,
        each drawn on the CPU from its own ``torch.Generator().manual_seed(seed)``.

        ``generate_images`` passes them with the latents, so a sample depends on its seed
        alone: not on the batch it falls in, nor on torch's global RNG. The default (a
        generator whose output is fixed by its latent) draws nothing and returns ``{}``."""
        return {}


class Discriminator(BlockNetwork):
    """A discriminator: image in, one logit per image (shape N or N×1) out."""


def _module_device(module: nn.Module) -> torch.device:
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")
