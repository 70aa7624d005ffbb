"""The classic DCGAN (Radford et al., ICLR 2016) as gtbench block networks.

Generator: a latent of shape (latent, 1, 1) goes through one 4×4 transposed convolution,
then stride-2 transposed convolutions that double the resolution until the image, each
followed by BatchNorm and ReLU, the last by Tanh; no biases. Discriminator: the mirror
image, stride-2 convolutions with LeakyReLU(0.2) (BatchNorm on all but the first) down to
4×4, then a 4×4 convolution to one logit (no sigmoid: the trainer uses logits).

Every block is a ``nn.Sequential`` of (conv, [BatchNorm], activation), so flattening the
blocks in order gives exactly the layer list of the reference PyTorch DCGAN
(``nn.Sequential`` named ``main``); :func:`from_main_state_dict` maps such a checkpoint
(``main.0.weight`` … ``main.12.weight``) onto the blocks, which is how third-party DCGAN
checkpoints load.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import torch
from torch import nn

from gtbench.api import Discriminator, Generator

__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "dcgan_init_",
    "from_main_state_dict",
    "to_main_state_dict",
]


def _doublings(resolution: int) -> int:
    """How many stride-2 layers take 4×4 to ``resolution`` (which must be 4·2^k, k ≥ 1)."""
    steps = round(math.log2(resolution / 4)) if resolution >= 8 else 0
    if steps < 1 or 4 * 2**steps != resolution:
        raise ValueError(f"DCGAN resolution must be 8, 16, 32, 64, 128…; got {resolution}")
    return steps


class DCGANGenerator(Generator):
    """DCGAN generator; blocks ``input4``, ``up8``, …, ``up{resolution}`` (the last
    block outputs the image through Tanh).

    ``width`` is the channel count just before the image (``ngf`` in the reference code);
    it doubles at every lower resolution, so 64 px with width 64 is 512→256→128→64→3.
    """

    def __init__(
        self, resolution: int = 64, channels: int = 3, latent: int = 100, width: int = 64
    ) -> None:
        steps = _doublings(resolution)
        blocks: dict[str, nn.Module] = {}
        ch = width * 2 ** (steps - 1)
        blocks["input4"] = nn.Sequential(
            nn.ConvTranspose2d(latent, ch, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(),
        )
        res = 4
        for i in range(steps):
            res *= 2
            if i == steps - 1:
                blocks[f"up{res}"] = nn.Sequential(
                    nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False), nn.Tanh()
                )
            else:
                blocks[f"up{res}"] = nn.Sequential(
                    nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                    nn.BatchNorm2d(ch // 2),
                    nn.ReLU(),
                )
                ch //= 2
        super().__init__(blocks)
        self.latent_shape = (latent, 1, 1)
        self.resolution = resolution
        self.channels = channels


class DCGANDiscriminator(Discriminator):
    """DCGAN discriminator; blocks ``down{resolution/2}``, …, ``down4``, ``logit``.

    ``width`` is the channel count after the first convolution (``ndf``); it doubles at
    every lower resolution. Output: N×1×1×1 logits.
    """

    def __init__(self, resolution: int = 64, channels: int = 3, width: int = 64) -> None:
        steps = _doublings(resolution)
        blocks: dict[str, nn.Module] = {}
        res, in_ch, ch = resolution, channels, width
        for i in range(steps):
            res //= 2
            layers: list[nn.Module] = [nn.Conv2d(in_ch, ch, 4, 2, 1, bias=False)]
            if i > 0:
                layers.append(nn.BatchNorm2d(ch))
            layers.append(nn.LeakyReLU(0.2))
            blocks[f"down{res}"] = nn.Sequential(*layers)
            in_ch, ch = ch, ch * 2
        blocks["logit"] = nn.Sequential(nn.Conv2d(in_ch, 1, 4, 1, 0, bias=False))
        super().__init__(blocks)
        self.resolution = resolution
        self.channels = channels


@torch.no_grad()
def dcgan_init_(module: nn.Module) -> nn.Module:
    """The DCGAN paper's initialisation: conv weights N(0, 0.02), BatchNorm scale
    N(1, 0.02), biases 0. Uses the global torch RNG; returns ``module``."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)
    return module


def _flat_layers(network: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every block's layers in data-flow order, with their qualified names."""
    blocks = network.blocks  # type: ignore[attr-defined]
    return [
        (f"blocks.{block}.{index}", layer)
        for block, seq in blocks.items()
        for index, layer in enumerate(seq)
    ]


_MAIN_KEY = re.compile(r"^(?:module\.)?main\.(\d+)\.(.+)$")


def from_main_state_dict(
    network: DCGANGenerator | DCGANDiscriminator, state: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Rename a reference-DCGAN state dict (``main.<i>.<param>``) to ``network``'s keys.

    Layer ``i`` of the reference ``nn.Sequential`` is the ``i``-th layer of the blocks
    flattened in order. Raises ``KeyError`` naming the first key that has no layer, so a
    checkpoint of another architecture fails with a clear message."""
    layers = _flat_layers(network)
    renamed: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        match = _MAIN_KEY.match(key)
        if match is None:
            raise KeyError(f"{key!r} is not a reference DCGAN key (main.<i>.<name>)")
        index = int(match.group(1))
        if index >= len(layers):
            raise KeyError(f"{key!r}: the network has only {len(layers)} layers")
        renamed[f"{layers[index][0]}.{match.group(2)}"] = tensor
    return renamed


def to_main_state_dict(network: DCGANGenerator | DCGANDiscriminator) -> dict[str, torch.Tensor]:
    """The inverse of :func:`from_main_state_dict`: ``network``'s state with reference keys."""
    names = {name: index for index, (name, _) in enumerate(_flat_layers(network))}
    out: dict[str, torch.Tensor] = {}
    for key, tensor in network.state_dict().items():
        prefix, _, param = key.rpartition(".")
        out[f"main.{names[prefix]}.{param}"] = tensor
    return out
