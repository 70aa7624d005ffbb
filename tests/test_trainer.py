import math

import pytest
import torch

from gtbench import registry
from gtbench.api import Method, to_unit_range
from gtbench.errors import DivergedError
from gtbench.trainer import TrainConfig, build_context, ema_beta, train


def _context(iters=3, seed=0, **config):
    networks = registry.sources().create("debug").load()
    real = to_unit_range(registry.datasets().create("debug").images()[:10])
    cfg = TrainConfig(iters=iters, batch_size=4, **config)
    return build_context(
        networks.generator, networks.discriminator, real, cfg, seed, torch.device("cpu")
    )


def _weights(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_deterministic_on_cpu_for_a_seed():
    runs = []
    for _ in range(2):
        ctx = _context(seed=3, augment="color,translation,cutout")
        train(ctx, Method())
        runs.append(_weights(ctx.g_ema))
    assert torch.equal(runs[0], runs[1])
    ctx = _context(seed=4)
    train(ctx, Method())
    assert not torch.equal(runs[0], _weights(ctx.g_ema))


def test_updates_g_d_and_ema_but_not_source_copy():
    ctx = _context()
    before_g, before_d = _weights(ctx.generator), _weights(ctx.discriminator)
    train(ctx, Method())
    assert not torch.equal(before_g, _weights(ctx.generator))
    assert not torch.equal(before_d, _weights(ctx.discriminator))
    assert torch.equal(before_g, _weights(ctx.source_generator))
    assert not torch.equal(_weights(ctx.g_ema), _weights(ctx.generator))


def test_frozen_parameters_stay_bitwise_equal():
    class FreezeFirstBlock(Method):
        def setup(self, ctx):
            for p in ctx.generator.named_blocks()[0][1].parameters():
                p.requires_grad_(False)

    ctx = _context()
    first = _weights(ctx.generator.named_blocks()[0][1])
    train(ctx, FreezeFirstBlock())
    assert torch.equal(first, _weights(ctx.generator.named_blocks()[0][1]))


def test_extra_losses_reach_the_networks():
    seen = {}

    class Extra(Method):
        def generator_loss(self, ctx, step):
            seen["g"] = step.phase, len(step.g_features)
            return step.fake.square().mean()

        def discriminator_loss(self, ctx, step):
            seen["d"] = step.phase, step.real is not None
            return step.d_real.square().mean()

    train(_context(iters=1), Extra())
    assert seen == {"g": ("g", 4), "d": ("d", True)}


def test_nan_loss_raises_diverged():
    class Explode(Method):
        def generator_loss(self, ctx, step):
            return step.fake.sum() * float("nan")

    with pytest.raises(DivergedError, match="became nan"):
        train(_context(iters=10, check_every=5), Explode())


def test_ema_ramp_up():
    config = TrainConfig(batch_size=16, ema_kimg=10, ema_rampup=0.05)
    assert ema_beta(config, 16) < ema_beta(config, 16_000) < ema_beta(config, 10**7)
    assert math.isclose(ema_beta(config, 10**7), 0.5 ** (16 / 10_000))


def test_d_warmup_trains_d_only():
    ctx = _context(iters=3, d_warmup=3)
    before_g, before_d = _weights(ctx.generator), _weights(ctx.discriminator)
    train(ctx, Method())
    assert torch.equal(before_g, _weights(ctx.generator))
    assert not torch.equal(before_d, _weights(ctx.discriminator))
