"""EWC: Fisher non-zero and finite; the paper's summed penalty, zero at θ_S and quadratic
away; its gradient reaches G; its strength on a BatchNorm source is in the sane band."""

from __future__ import annotations

import pytest
import torch

from gtbench.api import train
from gtbench.plugin import registry

from ._helpers import CONTEXTS, RATIO_BAND, drifted_ratio


def _prepared(source: str, samples: int = 6):  # noqa: ANN202
    ctx = CONTEXTS[source](iters=2)
    method = registry.methods().create(f"ewc:samples={samples}")
    method.setup(ctx)
    return ctx, method


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_fisher_is_nonzero_and_finite(source: str) -> None:
    ctx, method = _prepared(source)
    names = {n for n, p in ctx.generator.named_parameters() if p.requires_grad}
    assert set(method.fisher) == names
    values = torch.cat([f.flatten() for f in method.fisher.values()])
    assert torch.isfinite(values).all()
    assert (values >= 0).all() and values.sum() > 0
    # the source D is used, not the (trainable) copy being adapted
    assert all(not p.requires_grad for p in ctx.source_discriminator.parameters())


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_penalty_is_the_papers_sum_zero_at_source_and_quadratic(source: str) -> None:
    ctx, method = _prepared(source)
    assert method.penalty(ctx.generator).item() == 0.0
    values = []
    for scale in (1e-2, 1e-1):
        with torch.no_grad():
            for name, p in ctx.generator.named_parameters():
                p.copy_(method.anchor[name] + scale)
        values.append(method.penalty(ctx.generator).item())
    fisher_sum = sum(float(f.sum()) for f in method.fisher.values())
    assert values[0] == pytest.approx(1e-4 * fisher_sum, rel=1e-3)  # Σ F (θ−θ_S)², no mean
    assert values[1] / values[0] == pytest.approx(100.0, rel=1e-2)
    loss = method.generator_loss(ctx, None)  # type: ignore[arg-type]
    assert loss.item() == pytest.approx(method.params["weight"] * values[1], rel=1e-4)


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_penalty_gradient_reaches_generator_and_is_logged(source: str, tmp_path) -> None:
    ctx, method = _prepared(source)
    with torch.no_grad():
        for p in ctx.generator.parameters():
            p.add_(0.05)
    method.penalty(ctx.generator).backward()
    grads = [p.grad for p in ctx.generator.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)

    ctx = CONTEXTS[source](iters=3, check_every=3)
    ctx.log_path = tmp_path / "train_log.csv"
    method = registry.methods().create("ewc:samples=4")
    train(ctx, method)
    metrics = method.extra_metrics(ctx)
    assert metrics["ewc_fisher_mean"] > 0 and metrics["ewc_penalty"] > 0
    assert "ewc_penalty" in ctx.log_path.read_text().splitlines()[0].split(",")


def test_penalty_acts_on_a_batchnorm_source() -> None:
    low, high = RATIO_BAND
    assert low <= drifted_ratio("ewc:samples=8") <= high
    assert drifted_ratio("ewc:samples=8,weight=5") < low  # an uncalibrated λ barely acts
