"""MineGAN: G bitwise frozen in the ``mine`` phase while the miner and D train; G trains
in ``main``; both phases inside the counted budget, after the trainer's warm-up."""

from __future__ import annotations

import pytest
import torch

from gtbench.plugin import registry
from gtbench_plugins.methods.minegan import MinedGenerator

from ._helpers import bn_context, debug_context, snapshot

CONTEXTS = {"debug": debug_context, "animals-dcgan32": bn_context}


class Recording(registry.methods().get("minegan")):  # type: ignore[misc]
    """Snapshots G (weights only: BatchNorm buffers move in train mode), miner and D after
    every G update, with the phase it ran in."""

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self.history: list[tuple[str, dict, dict, dict]] = []

    def after_step(self, ctx, step) -> None:  # noqa: ANN001
        if step.update == "g":
            wrapped = ctx.generator
            self.history.append(
                (step.phase_name, snapshot(wrapped.generator), snapshot(wrapped.miner),
                 snapshot(ctx.discriminator))
            )  # fmt: skip


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_generator_frozen_while_mining_then_trained(source: str) -> None:
    ctx = CONTEXTS[source](iters=6)
    g_start, d_start = snapshot(ctx.generator), snapshot(ctx.discriminator)
    method = Recording(stage1_iters=3)
    method.fit(ctx)
    assert isinstance(ctx.generator, MinedGenerator) and isinstance(ctx.g_ema, MinedGenerator)
    assert [stage for stage, *_ in method.history] == ["mine"] * 3 + ["main"] * 3
    assert ctx.g_steps == 6 and ctx.d_steps == 6
    for index, (_, g, _, _) in enumerate(method.history[:3]):
        for key, value in g.items():
            assert torch.equal(value, g_start[key]), f"G {key} changed at mining step {index}"
    miner_first, miner_last = method.history[0][2], method.history[2][2]
    assert any(not torch.equal(miner_first[k], miner_last[k]) for k in miner_first)
    d_mined = method.history[2][3]
    assert any(not torch.equal(d_mined[k], d_start[k]) for k in d_start), "D idle while mining"
    g_end = method.history[-1][1]
    assert any(not torch.equal(g_end[k], g_start[k]) for k in g_end)
    assert method.extra_metrics(ctx)["minegan_mine_steps"] == 3


def test_warm_up_does_not_eat_the_mining_phase() -> None:
    """With the trainer's D-only warm-up, mining still gets its steps after it."""
    ctx = debug_context(iters=10, d_warmup=4)
    g_start = snapshot(ctx.generator)
    method = Recording(stage1_iters=3)
    method.fit(ctx)
    assert ctx.warmup_steps == 4 and ctx.g_steps == 6 and ctx.d_steps == 10
    assert [stage for stage, *_ in method.history] == ["mine"] * 3 + ["main"] * 3
    for _, g, _, _ in method.history[:3]:
        assert all(torch.equal(g[k], g_start[k]) for k in g)


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


@pytest.mark.parametrize("steps", [500, 1500, 5000, 50_000])
def test_mining_share_is_the_declared_proportion(steps: int) -> None:
    """The mining phase is the authors' share of the budget (--stage1 100 of --phase
    50000 = 0.2 %) at every budget, not a fixed count capped at half of it."""
    method = registry.methods().create("minegan")
    assert method.params["stage1_fraction"] == 100 / 50_000
    assert method.switch_iteration(steps) == round(steps * 100 / 50_000)
    assert method.switch_iteration(50_000) == 100  # the authors' own run
    assert registry.methods().create("minegan:stage1_iters=100").switch_iteration(steps) == 100


@pytest.mark.parametrize("fraction", [0.25, 0.5])
def test_mining_share_in_a_run_is_the_declared_proportion(fraction: float) -> None:
    """Counted by the trainer: the share of G updates taken in the ``mine`` phase."""
    ctx = debug_context(iters=12, d_warmup=4)
    method = Recording(stage1_fraction=fraction)
    method.fit(ctx)
    stages = [stage for stage, *_ in method.history]
    assert len(stages) == ctx.g_steps == 8
    assert stages.count("mine") == round(fraction * 8)
    assert stages == sorted(stages, key=lambda s: s != "mine")  # mining comes first


def test_mined_stylegan2_draws_its_noise_from_the_seed() -> None:
    """The miner's wrapper passes StyleGAN2's per-sample noise through: generated images
    depend on the seed alone, not on the batch they fall in (within one grey level of
    float rounding; the global-RNG noise of each batch would differ far more)."""
    from gtbench.measure.evaluation import generate_images
    from gtbench_plugins.sources.stylegan2.networks import StyleGAN2Generator

    torch.manual_seed(0)
    inner = StyleGAN2Generator(16, style_dim=32, n_mlp=2, channel_max=16)
    with torch.no_grad():
        for name, parameter in inner.named_parameters():
            if name.endswith("noise.weight"):
                parameter.fill_(0.5)  # noise that shows (a fresh init's strengths are 0)
    wrapped = MinedGenerator(inner)
    seeds = [3, 4]
    assert torch.equal(
        wrapped.sample_noise(seeds)["noise"][-1], inner.sample_noise(seeds)["noise"][-1]
    )
    whole = generate_images(wrapped, 8, seed=1, device="cpu", batch_size=8)
    split = generate_images(wrapped, 8, seed=1, device="cpu", batch_size=3)
    assert (whole.int() - split.int()).abs().max() <= 1
