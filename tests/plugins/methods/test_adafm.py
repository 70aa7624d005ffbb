"""AdaFM: only γ, β (and the fully trained first block) change; kernels stay bitwise equal;
only D's last block trains."""

from __future__ import annotations

import copy

import pytest
import torch

from gtbench.plugin import registry
from gtbench_plugins.methods.adafm import FilterModulation

from ._helpers import CONTEXTS, debug_context, snapshot


def test_only_scales_shifts_and_first_block_train() -> None:
    ctx = debug_context(iters=3)
    source = copy.deepcopy(ctx.generator)
    method = registry.methods().create("adafm")
    method.fit(ctx)
    generator = ctx.generator
    blocks = dict(generator.named_blocks())
    source_blocks = dict(source.named_blocks())
    # the latent-facing block trains fully
    fc_after, fc_before = snapshot(blocks["fc"]), snapshot(source_blocks["fc"])
    assert any(not torch.equal(fc_after[k], fc_before[k]) for k in fc_after)
    for name in ("up8", "up16", "to_rgb"):
        convs = [m for m in blocks[name].modules() if isinstance(m, torch.nn.Conv2d)]
        source_convs = [m for m in source_blocks[name].modules() if isinstance(m, torch.nn.Conv2d)]
        assert convs
        for conv, src in zip(convs, source_convs, strict=True):
            kernel = conv.parametrizations.weight.original
            assert torch.equal(kernel, src.weight), f"{name} kernel changed"
            assert torch.equal(conv.bias, src.bias), f"{name} bias changed"
            modulation = conv.parametrizations.weight[0]
            assert isinstance(modulation, FilterModulation)
            assert modulation.gamma.shape == (*src.weight.shape[:2], 1, 1)
            assert not torch.equal(modulation.gamma, torch.ones_like(modulation.gamma))
            assert not torch.equal(modulation.beta, torch.zeros_like(modulation.beta))
    trainable = {n for n, p in generator.named_parameters() if p.requires_grad}
    assert all(n.startswith("blocks.fc.") or n.endswith((".gamma", ".beta")) for n in trainable)
    # the EMA generator carries the same structure, and the saved weights reload into it
    rebuilt = method.prepare_generator(copy.deepcopy(source))
    rebuilt.load_state_dict(ctx.g_ema.state_dict())


def test_starts_at_the_source_generator() -> None:
    ctx = debug_context()
    z = ctx.generator.sample_latent(2, generator=ctx.rng)
    before = ctx.generator(z)
    method = registry.methods().create("adafm:full_blocks=0")
    wrapped = method.prepare_generator(ctx.generator)
    assert torch.allclose(wrapped(z), before)


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_only_the_last_discriminator_block_trains(source: str) -> None:
    ctx = CONTEXTS[source](iters=3)
    before = {name: snapshot(block) for name, block in ctx.discriminator.named_blocks()}
    registry.methods().create("adafm").fit(ctx)
    names = ctx.discriminator.block_names()
    for name, block in ctx.discriminator.named_blocks():
        after = snapshot(block)
        changed = any(not torch.equal(after[k], before[name][k]) for k in after)
        assert changed == (name == names[-1]), name


def test_bn_generator_kernels_stay_bitwise_and_scales_move() -> None:
    ctx = CONTEXTS["animals-dcgan32"](iters=3)
    source = copy.deepcopy(ctx.generator)
    registry.methods().create("adafm").fit(ctx)
    blocks, source_blocks = dict(ctx.generator.named_blocks()), dict(source.named_blocks())
    for name in list(blocks)[1:]:
        convs = [m for m in blocks[name].modules() if isinstance(m, torch.nn.ConvTranspose2d)]
        originals = [
            m for m in source_blocks[name].modules() if isinstance(m, torch.nn.ConvTranspose2d)
        ]
        assert convs
        for conv, original in zip(convs, originals, strict=True):
            assert torch.equal(conv.parametrizations.weight.original, original.weight)
            gamma = conv.parametrizations.weight[0].gamma
            assert not torch.equal(gamma, torch.ones_like(gamma))
        norms = [m for m in blocks[name].modules() if isinstance(m, torch.nn.BatchNorm2d)]
        src_norms = [
            m for m in source_blocks[name].modules() if isinstance(m, torch.nn.BatchNorm2d)
        ]
        for norm, src in zip(norms, src_norms, strict=True):
            assert torch.equal(norm.weight, src.weight) and torch.equal(norm.bias, src.bias)


def test_frozen_iters_keeps_scales_and_shifts_at_the_source_then_releases_them() -> None:
    """The authors' start (their script unfreezes ``small_adafm_`` at it == 10000): γ, β
    bitwise at 1, 0 through the ``frozen`` phase while the first block trains; then they
    move. The default (0) has no frozen phase."""
    seen = {}

    class Recording(registry.methods().get("adafm")):  # type: ignore[misc]
        def on_phase_start(self, ctx, phase) -> None:  # noqa: ANN001
            if phase.name == "main":  # the frozen phase has ended
                seen["frozen"] = (snapshot(ctx.generator), ctx.g_steps)
            super().on_phase_start(ctx, phase)

    ctx = debug_context(iters=5)
    start = snapshot(Recording().prepare_generator(copy.deepcopy(ctx.generator)))
    method = Recording(frozen_iters=3)
    method.fit(ctx)
    seen["main"] = (snapshot(ctx.generator), ctx.g_steps)
    assert [p.name for p in method.phases(ctx)] == ["frozen", "main"]
    frozen, g_steps = seen["frozen"]
    assert g_steps == 3
    modulation = [k for k in frozen if k.endswith((".gamma", ".beta"))]
    assert modulation and all(torch.equal(frozen[k], start[k]) for k in modulation)
    assert any(not torch.equal(frozen[k], start[k]) for k in frozen if k.startswith("blocks.fc."))
    final, _ = seen["main"]
    assert any(not torch.equal(final[k], start[k]) for k in modulation)
    assert method.extra_metrics(ctx)["adafm_frozen_steps"] == 3
    assert [p.name for p in registry.methods().create("adafm").phases(ctx)] == ["main"]
