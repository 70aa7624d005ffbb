"""AdaFM: only γ, β (and the fully trained first block) change; kernels stay bitwise equal."""

from __future__ import annotations

import copy

import torch

from gtbench import registry
from gtbench_plugins.methods.adafm import FilterModulation

from ._helpers import debug_context, snapshot


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
