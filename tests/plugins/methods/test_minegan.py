"""MineGAN: G bitwise frozen in stage one while the miner trains; G trains after."""

from __future__ import annotations

import torch

from gtbench import registry
from gtbench_plugins.methods.minegan import MinedGenerator

from ._helpers import debug_context, snapshot


def test_generator_frozen_in_stage_one_then_trained() -> None:
    class Recording(registry.methods().get("minegan")):  # type: ignore[misc]
        def after_step(self, ctx, step) -> None:  # noqa: ANN001
            super().after_step(ctx, step)
            self.g_history.append(snapshot(ctx.generator.generator))
            self.miner_history.append(snapshot(ctx.generator.miner))

    ctx = debug_context(iters=6)
    g_start = snapshot(ctx.generator)
    method = Recording(stage1_iters=3)
    method.g_history, method.miner_history = [], []
    method.fit(ctx)
    assert isinstance(ctx.generator, MinedGenerator) and isinstance(ctx.g_ema, MinedGenerator)
    assert ctx.state["minegan_switch"] == 3
    for step in range(3):  # stage one: iterations 0, 1, 2
        for key, value in method.g_history[step].items():
            assert torch.equal(value, g_start[key]), f"G {key} changed at step {step}"
    miner0, miner_end = method.miner_history[0], method.miner_history[2]
    assert any(not torch.equal(miner0[k], miner_end[k]) for k in miner0)
    g_end = method.g_history[-1]
    assert any(not torch.equal(g_end[k], g_start[k]) for k in g_end)


def test_wrapper_looks_like_g_and_rebuilds_from_saved_weights() -> None:
    ctx = debug_context(iters=2)
    method = registry.methods().create("minegan")
    names = ctx.generator.block_names()
    method.fit(ctx)
    wrapped = ctx.g_ema
    assert wrapped.block_names() == names and wrapped.latent_shape == (32,)
    assert any(k.startswith("miner.") for k in wrapped.state_dict())
    z = wrapped.sample_latent(3)
    image, features = wrapped.forward_features(z)
    assert image.shape == (3, 3, 16, 16) and len(features) == len(names)
    source = registry.sources().create("debug").load(pretrained=True).generator
    rebuilt = method.prepare_generator(source)
    rebuilt.load_state_dict(wrapped.state_dict())
    assert torch.equal(rebuilt(z), wrapped(z))


def test_switch_scales_to_short_budgets() -> None:
    method = registry.methods().create("minegan")
    assert method.switch_iteration(5000) == 100
    assert method.switch_iteration(60) == 30
