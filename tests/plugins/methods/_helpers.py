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
