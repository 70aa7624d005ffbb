"""L2-SP: zero penalty at the source, pulling G back toward it during training."""

from __future__ import annotations

import torch

from gtbench import registry

from ._helpers import debug_context


def test_penalty_zero_at_source_and_quadratic_away() -> None:
    ctx = debug_context()
    method = registry.methods().create("l2-sp")
    method.setup(ctx)
    assert method.generator_loss(ctx, None).item() == 0.0  # type: ignore[arg-type]
    with torch.no_grad():
        for p in ctx.generator.parameters():
            p.add_(0.1)
    n = sum(p.numel() for p in ctx.generator.parameters())
    loss = method.generator_loss(ctx, None)  # type: ignore[arg-type]
    assert torch.isclose(loss, torch.tensor(0.1 / 2 * n * 0.01), rtol=1e-3)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ctx.generator.parameters())


def test_strong_anchor_keeps_generator_closer() -> None:
    distances = []
    for weight in (0.0, 1e4):
        ctx = debug_context(iters=4, lr_g=1e-2)
        method = registry.methods().create(f"l2-sp:weight_g={weight}")
        method.fit(ctx)
        distances.append(method.extra_metrics(ctx)["l2sp_g_distance"])
    assert distances[1] < distances[0]
