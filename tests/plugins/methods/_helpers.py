"""Shared set-up for the method mechanism tests: debug source, debug shots, a context."""

from __future__ import annotations

import torch

from gtbench import registry
from gtbench.trainer import TrainConfig, TrainContext, build_context


def debug_context(
    iters: int = 4, batch_size: int = 4, seed: int = 0, shots: int = 8, **config: object
) -> TrainContext:
    source = registry.sources().create("debug")
    networks = source.load(pretrained=True)
    dataset = registry.datasets().create("debug")
    images = dataset.images()[list(dataset.split(shots, seed).train)]
    real = images.float() / 127.5 - 1.0
    cfg = TrainConfig(iters=iters, batch_size=batch_size, **config)  # type: ignore[arg-type]
    return build_context(
        networks.generator, networks.discriminator, real, cfg, seed, torch.device("cpu")
    )


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def bn_context(
    iters: int = 4, batch_size: int = 4, seed: int = 0, shots: int = 8, **config: object
) -> TrainContext:
    """Like :func:`debug_context` on ``animals-dcgan32`` (a BatchNorm DCGAN G and D, 1×32×32).

    The shots are synthetic grey discs (no dataset download, fast): what the mechanism
    tests need is a BatchNorm source, not a realistic target."""
    networks = registry.sources().create("animals-dcgan32").load(pretrained=True)
    rng = torch.Generator().manual_seed(seed)
    grid = torch.linspace(-1, 1, 32)
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    centres = torch.rand((shots, 2), generator=rng) - 0.5
    radii = 0.3 + 0.4 * torch.rand((shots,), generator=rng)
    dist = (yy - centres[:, 0, None, None]) ** 2 + (xx - centres[:, 1, None, None]) ** 2
    real = torch.where(dist < radii[:, None, None] ** 2, 1.0, -1.0).unsqueeze(1)
    cfg = TrainConfig(iters=iters, batch_size=batch_size, **config)  # type: ignore[arg-type]
    return build_context(
        networks.generator, networks.discriminator, real, cfg, seed, torch.device("cpu")
    )
