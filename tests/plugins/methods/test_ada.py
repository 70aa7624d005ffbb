"""ADA: p rises while D is sure the reals are real (overfitting), falls otherwise; it is
driven by the trainer's observe hook (D's judgement of the reals), on the debug source and
on a BatchNorm source; kimg scales with the budget by default."""

from __future__ import annotations

import csv

import pytest
import torch

from gtbench.errors import PluginError
from gtbench.plugin import registry
from gtbench_plugins.methods.ada import AdaptiveAugment, integer_translation, rotate90

from ._helpers import bn_context, debug_context

CONTEXTS = {"debug": debug_context, "animals-dcgan32": bn_context}


def _biased_head(ctx, bias: float) -> None:  # noqa: ANN001
    """Make D answer ``bias`` for every image: its last block's conv gets zero weights and,
    the DCGAN head having no bias, a constant is added through a forward hook."""
    head = ctx.discriminator.named_blocks()[-1][1]
    for parameter in head.parameters():
        with torch.no_grad():
            parameter.zero_()
        parameter.requires_grad_(False)
    head.register_forward_hook(lambda module, args, out: out + bias)


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_p_rises_when_d_overfits(source: str) -> None:
    ctx = CONTEXTS[source](iters=8, lr_d=0.0)
    _biased_head(ctx, 100.0)  # sign(D(real)) = +1 > 0.6
    method = registry.methods().create("ada:kimg=0.1")
    method.fit(ctx)
    metrics = method.extra_metrics(ctx)
    # 2 updates of 4 minibatches × 4 images / 100 images each
    assert metrics["ada_p"] == pytest.approx(0.32)
    assert metrics["ada_rt"] == 1.0
    # p per D update: 0, 0, 0, .16 (×4), .32 (×1) over the 8 updates
    assert metrics["ada_p_mean"] == pytest.approx((0.16 * 4 + 0.32) / 8)


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_p_falls_when_d_does_not_overfit(source: str) -> None:
    ctx = CONTEXTS[source](iters=8, lr_d=0.0)
    _biased_head(ctx, -100.0)
    method = registry.methods().create("ada:kimg=0.1,p_init=0.5")
    method.fit(ctx)
    assert method.extra_metrics(ctx)["ada_p"] == pytest.approx(0.18)
    assert method.extra_metrics(ctx)["ada_rt"] == -1.0


def test_r_t_is_read_from_the_d_updates_judgement() -> None:
    """D's loss hooks are not used to spy on D(real): ADA adds no loss, and r_t is the mean
    sign of exactly the logits the trainer hands to ``after_step`` of each D update."""
    ctx = debug_context(iters=4)
    seen: list[torch.Tensor] = []

    class Spy(registry.methods().get("ada")):  # type: ignore[misc]
        def after_step(self, ctx, step) -> None:  # noqa: ANN001
            if step.update == "d":
                seen.append(step.d_real.detach().sign())
            super().after_step(ctx, step)

    method = Spy(kimg=0.1)
    method.fit(ctx)
    assert method.discriminator_loss(ctx, None) is None  # type: ignore[arg-type]
    assert method.extra_metrics(ctx)["ada_rt"] == pytest.approx(float(torch.cat(seen).mean()))


def test_kimg_scales_with_the_budget_and_p_reaches_one_in_that_fraction() -> None:
    ctx = debug_context(iters=40, batch_size=4, lr_d=0.0)
    _biased_head(ctx, 100.0)
    method = registry.methods().create("ada:traverse_fraction=0.5")
    method.fit(ctx)
    metrics = method.extra_metrics(ctx)
    assert metrics["ada_kimg"] == pytest.approx(0.5 * 40 * 4 / 1000)
    # each update moves p by 16 / 80 = 0.2: five updates (20 of 40 steps) reach 1
    assert metrics["ada_p"] == 1.0
    assert registry.methods().create("ada:kimg=100").resolved_kimg(ctx) == 100.0


def test_p_is_logged_per_step(tmp_path) -> None:  # noqa: ANN001
    ctx = debug_context(iters=8, lr_d=0.0, check_every=4)
    ctx.log_path = tmp_path / "train_log.csv"
    _biased_head(ctx, 100.0)
    method = registry.methods().create("ada:kimg=0.1")
    method.fit(ctx)
    with ctx.log_path.open() as handle:
        rows = list(csv.DictReader(handle))
    # row means of p after each D update: (0, 0, 0, .16) and (.16, .16, .16, .32)
    assert [float(r["aug_p"]) for r in rows] == pytest.approx([0.04, 0.2])


def test_bad_parameters_fail_in_one_line() -> None:
    with pytest.raises(PluginError, match="interval"):
        registry.methods().create("ada:interval=0")
    with pytest.raises(PluginError, match="traverse_fraction"):
        registry.methods().create("ada:traverse_fraction=0")


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
