"""DiffAugment: every image D sees (real and fake) is augmented, and G's gradient passes."""

from __future__ import annotations

import torch

from gtbench.plugin import registry

from ._helpers import debug_context


def test_real_and_fake_are_augmented_before_d() -> None:
    ctx = debug_context(iters=2)
    method = registry.methods().create("diffaugment")
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    seen_by_d: list[torch.Tensor] = []
    original_augment = method.augment

    def spy_augment(ctx_, images):  # noqa: ANN001, ANN202
        out = original_augment(ctx_, images)
        calls.append((images if images.requires_grad else images.detach().clone(), out))
        return out

    forward_features = ctx.discriminator.forward_features

    def spy_forward(x):  # noqa: ANN001, ANN202
        seen_by_d.append(x)
        return forward_features(x)

    method.augment = spy_augment  # type: ignore[method-assign]
    ctx.discriminator.forward_features = spy_forward  # type: ignore[method-assign]
    method.fit(ctx)
    # R1 steps add a D pass of their own through the augmentation, its gradient taken
    # w.r.t. the reals before it (a leaf needing grad), as DiffAugment's run_D
    r1_calls = [(x, out) for x, out in calls if x.requires_grad and x.is_leaf]
    calls = [(x, out) for x, out in calls if not (x.requires_grad and x.is_leaf)]
    assert len(r1_calls) == 1 and torch.equal(r1_calls[0][0].detach(), calls[0][0])
    # per step: real and fake in the D phase, fake in the G phase
    assert len(calls) == 3 * ctx.config.iters
    assert len(seen_by_d) == len(calls) + len(r1_calls)
    for (before, after), d_input in zip(
        calls, [x for x in seen_by_d if x is not r1_calls[0][1]], strict=True
    ):
        assert d_input is after
        assert not torch.allclose(before.detach(), after.detach())
    assert any(x is r1_calls[0][1] for x in seen_by_d)  # D judged the augmented reals
    # the first call of a step augments the real batch, so D never saw a raw shot
    real_inputs = calls[0][0]
    assert any(torch.equal(real_inputs[i], s) for i in range(4) for s in ctx.real)


def test_gradient_reaches_generator_through_augmentation() -> None:
    ctx = debug_context()
    method = registry.methods().create("diffaugment")
    method.setup(ctx)
    z = ctx.generator.sample_latent(4, generator=ctx.rng)
    out = method.augment(ctx, ctx.generator(z))
    ctx.discriminator(out).sum().backward()
    grads = [p.grad for p in ctx.generator.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
