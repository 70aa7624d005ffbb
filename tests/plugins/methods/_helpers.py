"""Shared set-up for the method mechanism tests: debug source, debug shots, a context."""

from __future__ import annotations

import torch

from gtbench.plugin import registry
from gtbench.train.trainer import TrainConfig, TrainContext, build_context


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


# Both sources every mechanism test runs on: a plain one and a BatchNorm one.
CONTEXTS = {"debug": debug_context, "animals-dcgan32": bn_context}

# reg_grad_ratio "acts" band: the regulariser's gradient is neither negligible nor the
# whole update (tests/plugins/methods/test_*: EWC, L2-SP, CDC, DCL).
RATIO_BAND = (0.05, 5.0)


def drifted_ratio(spec: str, steps: int = 10, compress: bool = True, **config: object) -> float:
    """The trainer-measured ``reg_grad_ratio`` of ``spec`` on ``animals-dcgan32`` after a
    short run (batch 8, synthetic shots).

    With ``compress`` the run's drift from the source stands in for the default budget's
    (300 steps at lr 2e-4): ``steps`` steps at lr 300·2e-4 / (8·steps). The factor 8 is
    calibrated against full default-suite runs (animals-dcgan32 → animals-cat, 300 steps):
    this proxy gives L2-SP (α = 0.1) 0.019 against 0.019, EWC (λ = 5) 0.009 against 0.014
    and EWC (λ = 300) 0.21 against 0.15, so a weight-anchoring penalty sees about the
    distance it sees at the end of a real run, in seconds. Without ``compress``: the
    trainer's lr, for terms that do not grow with the drift (CDC's KL)."""
    from gtbench.api import train

    lr = 300 * 2e-4 / (8 * steps) if compress else 2e-4
    ctx = bn_context(iters=steps, batch_size=8, lr_g=lr, lr_d=lr, **config)
    train(ctx, registry.methods().create(spec))
    return ctx.trainer_metrics["reg_grad_ratio"]
