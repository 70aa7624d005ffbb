"""EWC: Fisher non-zero and finite; penalty zero at θ_S, growing away; gradient reaches G."""

from __future__ import annotations

import torch

from gtbench import registry

from ._helpers import debug_context


def _prepared(samples: int = 8):  # noqa: ANN202
    ctx = debug_context(iters=2)
    method = registry.methods().create(f"ewc:samples={samples}")
    method.setup(ctx)
    return ctx, method


def test_fisher_is_nonzero_and_finite() -> None:
    ctx, method = _prepared()
    names = {n for n, p in ctx.generator.named_parameters() if p.requires_grad}
    assert set(method.fisher) == names
    values = torch.cat([f.flatten() for f in method.fisher.values()])
    assert torch.isfinite(values).all()
    assert (values >= 0).all() and values.sum() > 0
    # the source D is used, not the (trainable) copy being adapted
    assert all(not p.requires_grad for p in ctx.source_discriminator.parameters())


def test_penalty_zero_at_source_and_grows_away() -> None:
    ctx, method = _prepared()
    assert method.penalty(ctx.generator).item() == 0.0
    values = []
    for scale in (1e-2, 1e-1):
        with torch.no_grad():
            for p, (name, _) in zip(
                ctx.generator.parameters(), ctx.generator.named_parameters(), strict=True
            ):
                p.copy_(method.anchor[name] + scale)
        values.append(method.penalty(ctx.generator).item())
    assert 0.0 < values[0] < values[1]
    assert abs(values[1] / values[0] - 100.0) < 1e-2 * 100  # quadratic in the distance


def test_penalty_gradient_reaches_generator_and_training_runs() -> None:
    ctx, method = _prepared()
    with torch.no_grad():
        for p in ctx.generator.parameters():
            p.add_(0.05)
    loss = method.penalty(ctx.generator)
    loss.backward()
    grads = [p.grad for p in ctx.generator.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)

    ctx = debug_context(iters=3)
    method = registry.methods().create("ewc:samples=4")
    method.fit(ctx)
    metrics = method.extra_metrics(ctx)
    assert metrics["ewc_fisher_mean"] > 0 and metrics["ewc_penalty"] > 0
