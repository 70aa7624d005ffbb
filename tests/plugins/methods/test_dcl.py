"""DCL: InfoNCE terms rank the positive first; at the source the G-side positive is the
same feature; gradients reach only the adapted G; the D-side term penalises fakes that
copy the shots; both terms are logged; a strength in the sane band on a BatchNorm source."""

from __future__ import annotations

import pytest
import torch

from gtbench.api import train
from gtbench.plugin import registry
from gtbench_plugins.methods.dcl import info_nce, info_nce_with_negatives

from ._helpers import CONTEXTS, RATIO_BAND, drifted_ratio


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
    low, high = RATIO_BAND
    assert low <= drifted_ratio("dcl") <= high
