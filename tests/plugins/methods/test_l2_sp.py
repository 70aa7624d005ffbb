"""L2-SP: zero penalty at the source, pulling G back toward it during training, with a
strength in the sane band on a BatchNorm source."""

from __future__ import annotations

import pytest
import torch

from gtbench.plugin import registry

from ._helpers import CONTEXTS, RATIO_BAND, drifted_ratio


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_penalty_zero_at_source_and_quadratic_away(source: str) -> None:
    ctx = CONTEXTS[source]()
    method = registry.methods().create("l2-sp")
    method.setup(ctx)
    assert method.generator_loss(ctx, None).item() == 0.0  # type: ignore[arg-type]
    with torch.no_grad():
        for p in ctx.generator.parameters():
            p.add_(0.1)
    n = sum(p.numel() for p in ctx.generator.parameters())
    loss = method.generator_loss(ctx, None)  # type: ignore[arg-type]
    alpha = method.params["weight_g"]
    assert torch.isclose(loss, torch.tensor(alpha / 2 * n * 0.01), rtol=1e-3)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ctx.generator.parameters())


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_strong_anchor_keeps_generator_closer(source: str) -> None:
    distances = []
    for weight in (0.0, 1e4):
        ctx = CONTEXTS[source](iters=4, lr_g=1e-2)
        method = registry.methods().create(f"l2-sp:weight_g={weight}")
        method.fit(ctx)
        distances.append(method.extra_metrics(ctx)["l2sp_g_distance"])
    assert distances[1] < distances[0]


def test_penalty_acts_on_a_batchnorm_source() -> None:
    low, high = RATIO_BAND
    assert low <= drifted_ratio("l2-sp") <= high
    assert drifted_ratio("l2-sp:weight_g=0.1") < low  # the L2-SP paper's α barely acts here
