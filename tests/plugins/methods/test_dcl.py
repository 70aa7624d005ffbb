"""DCL: InfoNCE terms rank the positive first; at the source the G-side positive is the
same feature; gradients reach only the adapted G; the D-side term penalises fakes that
copy the shots; both terms are logged; a strength in the sane band on a BatchNorm source."""

from __future__ import annotations

import pytest
import torch

from gtbench.api import train
from gtbench.plugin import registry
from gtbench_plugins.methods.cdc import HEAD_NAME
from gtbench_plugins.methods.dcl import info_nce, info_nce_with_negatives

from ._helpers import CONTEXTS, RATIO_BAND, bn_context, drifted_ratio


def test_info_nce_prefers_the_matching_candidate() -> None:
    anchors = torch.eye(4)
    assert float(info_nce(anchors, anchors, 0.07)) < 1e-4  # positives match, negatives ⟂
    assert float(info_nce(anchors, anchors.roll(1, 0), 0.07)) > 10  # every positive wrong
    far = info_nce_with_negatives(anchors, anchors, -anchors, 0.07)
    near = info_nce_with_negatives(anchors, anchors, anchors.roll(1, 0), 0.07)
    copy = info_nce_with_negatives(anchors, anchors.roll(1, 0), anchors, 0.07)
    assert float(far) < float(near) < float(copy)  # copying a negative costs most


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_terms_at_the_source_and_gradients_reach_only_the_adapted_g(source: str) -> None:
    ctx = CONTEXTS[source]()
    method = registry.methods().create("dcl")
    method.setup(ctx)
    g_term, d_term = method.contrastive_terms(ctx)
    assert (
        0.0 <= float(g_term.detach()) < float(torch.log(torch.tensor(4.0)))
    )  # positive ranked first
    assert float(d_term.detach()) > 0
    (g_term + d_term).backward()
    grads = [p.grad for p in ctx.generator.parameters()]
    assert any(g is not None and float(g.abs().sum()) > 0 for g in grads)
    for parameter in ctx.source_generator.parameters():
        assert parameter.grad is None


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_training_runs_and_logs_both_terms(source: str, tmp_path) -> None:
    ctx = CONTEXTS[source](iters=3, check_every=3)
    ctx.log_path = tmp_path / "train_log.csv"
    buffers = {n: b.clone() for n, b in ctx.source_generator.named_buffers()}
    method = registry.methods().create("dcl")
    train(ctx, method)
    header = ctx.log_path.read_text().splitlines()[0].split(",")
    assert {"dcl_g", "dcl_d"} <= set(header)
    metrics = method.extra_metrics(ctx)
    assert metrics["dcl_final_g"] >= 0 and metrics["dcl_final_d"] > 0
    assert ctx.trainer_metrics["reg_grad_ratio"] > 0
    after = dict(ctx.source_generator.named_buffers())
    assert all(torch.equal(after[n], b) for n, b in buffers.items())


def test_regulariser_acts_on_a_batchnorm_source() -> None:
    """Image-level only (version 1's loss): the weights' strength in the sane band."""
    low, high = RATIO_BAND
    assert low <= drifted_ratio("dcl:patch=false") <= high


def _patch_run(spec: str):  # noqa: ANN202
    ctx = bn_context(iters=16, batch_size=8, check_every=1)  # every G update measured
    method = registry.methods().create(spec)
    train(ctx, method)
    return ctx, method


def test_patch_discriminator_as_the_official_model_by_default() -> None:
    """DCL's released model.py is CDC's PatchGAN: anchors + image-level loss every 4th
    step, a patch head on the others; ``patch=false`` is the image-level loss only."""
    ctx, method = _patch_run("dcl")
    assert hasattr(ctx.discriminator, HEAD_NAME)
    out, features = ctx.discriminator.forward_features(ctx.real[:4])
    ctx.step = 4
    assert method.discriminator_logits(ctx, out, features).shape == (4,)
    ctx.step = 1
    assert method.discriminator_logits(ctx, out, features).shape[1] > 1  # one per patch
    metrics = method.extra_metrics(ctx)
    # image-level steps: the pretrained D's gradient dwarfs the terms'; patch steps: the
    # fresh head's is weak, and the authors' head lr makes it stronger
    assert metrics["dcl_reg_grad_ratio_image"] < 0.2 * metrics["dcl_reg_grad_ratio_patch"]
    slow_ctx, slow = _patch_run("dcl:head_lr=0")
    slow_patch = slow.extra_metrics(slow_ctx)["dcl_reg_grad_ratio_patch"]
    assert metrics["dcl_reg_grad_ratio_patch"] < 0.7 * slow_patch
    plain_ctx, plain = _patch_run("dcl:patch=false")
    assert not hasattr(plain_ctx.discriminator, HEAD_NAME)
    assert not any(k.startswith("dcl_reg_grad_ratio_") for k in plain.extra_metrics(plain_ctx))


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_d_side_term_drops_when_the_fake_is_its_source_image(source: str) -> None:
    """Same latents, same D block and negatives (the draws replayed): the term is lowest
    when every adapted image is its source counterpart, higher for a perturbed one, and
    highest when the adapted images copy real shots (what the term penalises)."""
    ctx = CONTEXTS[source]()
    method = registry.methods().create("dcl")
    method.setup(ctx)
    z = ctx.generator.sample_latent(4, generator=ctx.rng)
    with torch.no_grad():
        source_image = ctx.source_generator(z)
    noise = torch.randn(source_image.shape, generator=torch.Generator().manual_seed(1))
    state = ctx.rng.get_state()

    def term(adapted: torch.Tensor) -> float:
        ctx.rng.set_state(state)
        with torch.no_grad():
            return float(method.discriminator_term(ctx, adapted, source_image))

    same = term(source_image)
    perturbed = [term(source_image + scale * noise) for scale in (0.1, 0.5)]
    copies = term(ctx.real[:4])
    assert same < perturbed[0] < perturbed[1] < copies
