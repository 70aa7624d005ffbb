"""ADA: p rises while D is sure the reals are real (overfitting), falls otherwise."""

from __future__ import annotations

import pytest
import torch

from gtbench import registry
from gtbench_plugins.methods.ada import AdaptiveAugment, integer_translation, rotate90

from ._helpers import debug_context


def _biased_head(ctx, bias: float) -> None:  # noqa: ANN001
    head = dict(ctx.discriminator.named_blocks())["head"][-1]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(bias)
    head.weight.requires_grad_(False)
    head.bias.requires_grad_(False)


def test_p_rises_when_d_overfits() -> None:
    ctx = debug_context(iters=8, lr_d=0.0)
    _biased_head(ctx, 100.0)  # sign(D(real)) = +1 > 0.6
    method = registry.methods().create("ada:kimg=0.1")
    method.fit(ctx)
    # 2 updates of 4 minibatches × 4 images / 100 images each
    assert method.extra_metrics(ctx)["ada_p"] == pytest.approx(0.32)
    assert method.extra_metrics(ctx)["ada_rt"] == 1.0


def test_p_falls_when_d_does_not_overfit() -> None:
    ctx = debug_context(iters=8, lr_d=0.0)
    _biased_head(ctx, -100.0)
    method = registry.methods().create("ada:kimg=0.1,p_init=0.5")
    method.fit(ctx)
    assert method.extra_metrics(ctx)["ada_p"] == pytest.approx(0.18)


def test_pipeline_is_identity_at_zero_and_differentiable() -> None:
    rng = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, 8, 8, requires_grad=True)
    assert AdaptiveAugment(rng, 0.0)(x) is x
    y = AdaptiveAugment(rng, 1.0)(x)
    assert not torch.allclose(y, x)
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_blit_transforms_permute_pixels() -> None:
    rng = torch.Generator().manual_seed(1)
    x = torch.arange(2 * 16, dtype=torch.float32).view(2, 1, 4, 4)
    rotated = rotate90(x, rng)
    shifted = integer_translation(x, rng, ratio=0.5)
    for image, out in zip(x, rotated, strict=True):
        assert torch.equal(out.flatten().sort().values, image.flatten().sort().values)
    assert set(shifted.unique().tolist()) <= set(x.unique().tolist())
