"""CDC: the distance-consistency KL pulls only the adapted G; the patch head trains."""

from __future__ import annotations

import torch

from gtbench import registry
from gtbench_plugins.methods.cdc import HEAD_NAME

from ._helpers import debug_context, snapshot


def test_kl_is_zero_at_source_and_its_gradient_reaches_only_the_adapted_g() -> None:
    ctx = debug_context()
    method = registry.methods().create("cdc")
    method.setup(ctx)
    z = ctx.generator.sample_latent(4, generator=ctx.rng)
    assert float(method.distance_consistency(ctx, z).detach()) < 1e-6  # adapted == source
    with torch.no_grad():
        for parameter in ctx.generator.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    kl = method.distance_consistency(ctx, z)
    assert float(kl.detach()) > 0
    kl.backward()
    grads = [p.grad for p in ctx.generator.parameters()]
    assert any(g is not None and float(g.abs().sum()) > 0 for g in grads)
    for parameter in ctx.source_generator.parameters():
        assert not parameter.requires_grad and parameter.grad is None


def test_anchor_and_patch_steps_and_the_patch_head_trains() -> None:
    class Recording(registry.methods().get("cdc")):  # type: ignore[misc]
        def setup(self, ctx) -> None:  # noqa: ANN001
            super().setup(ctx)
            self.head_start = snapshot(getattr(ctx.discriminator, HEAD_NAME))

    ctx = debug_context(iters=5)  # steps 0 and 4 image-level, 1-3 patch-level
    method = Recording()
    method.fit(ctx)
    head = getattr(ctx.discriminator, HEAD_NAME)
    d_params = {id(p) for p in ctx.discriminator.parameters()}
    assert all(id(p) in d_params for p in head.parameters())  # in the trainer's D optimiser
    after = snapshot(head)
    assert any(not torch.equal(after[k], method.head_start[k]) for k in after)
    assert method.extra_metrics(ctx)["cdc_final_kl"] > 0

    out, features = ctx.discriminator.forward_features(ctx.real[:4])
    ctx.step = 4
    assert method.discriminator_logits(ctx, out, features).shape == (4,)
    ctx.step = 1
    assert method.discriminator_logits(ctx, out, features).shape[1] > 1  # one per patch

    ctx.step = 0  # anchor step: latents are the shots' anchors plus N(0, 0.1) noise
    z = method.sample_latent(ctx, 64)
    anchors = ctx.state["cdc_anchors"]
    assert len(anchors) == len(ctx.real)
    nearest = torch.cdist(z, anchors).min(dim=1).values
    assert float(nearest.max()) < 1.0  # ~0.1·√32 ≈ 0.57 expected; prior draws are ~8 apart
