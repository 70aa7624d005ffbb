"""The shared trainer: updates, frozen parameters, phases and hooks, counted budgets,
R1 on un-augmented reals, flips, EMA without ramp-up from a pretrained start, BatchNorm
statistics of the EMA, regulariser strength."""

import math

import pytest
import torch

from gtbench.api import Method, Phase, to_unit_range
from gtbench.errors import DivergedError
from gtbench.plugin import registry
from gtbench.train.trainer import (
    TrainConfig,
    build_context,
    ema_beta,
    ema_half_life_images,
    recompute_batchnorm_stats,
    resolve_phases,
    train,
)


def _context(iters=3, seed=0, source="debug", from_pretrained=True, **config):
    networks = registry.sources().create(source).load()
    if source == "debug":
        real = to_unit_range(registry.datasets().create("debug").images()[:10])
    else:
        info = registry.sources().create(source).info
        gen = torch.Generator().manual_seed(0)
        real = torch.rand((6, info.channels, info.resolution, info.resolution), generator=gen)
        real = real * 2 - 1
    config.setdefault("batch_size", 4)
    cfg = TrainConfig(iters=iters, **config)
    return build_context(
        networks.generator,
        networks.discriminator,
        real,
        cfg,
        seed,
        torch.device("cpu"),
        from_pretrained=from_pretrained,
    )


def _weights(module):
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_deterministic_on_cpu_for_a_seed():
    runs = []
    for _ in range(2):
        ctx = _context(seed=3)
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
            seen["g"] = step.update, len(step.g_features)
            return step.fake.square().mean()

        def discriminator_loss(self, ctx, step):
            seen["d"] = step.update, step.real is not None
            return step.d_real.square().mean()

    train(_context(iters=1), Extra())
    assert seen == {"g": ("g", 4), "d": ("d", True)}


def test_nan_loss_raises_diverged():
    class Explode(Method):
        def generator_loss(self, ctx, step):
            return step.fake.sum() * float("nan")

    with pytest.raises(DivergedError, match="became nan"):
        train(_context(iters=10, check_every=5), Explode())


def test_ema_ramps_up_only_from_scratch():
    config = TrainConfig(batch_size=16, ema_kimg=10, ema_rampup=0.05)
    assert ema_beta(config, 16) < ema_beta(config, 16_000) < ema_beta(config, 10**7)
    assert math.isclose(ema_beta(config, 10**7), 0.5 ** (16 / 10_000))
    assert ema_beta(config, 16, rampup=False) == ema_beta(config, 10**7)


def test_ema_half_life_is_a_share_of_the_run_unless_set_in_kimg():
    assert ema_half_life_images(TrainConfig(iters=100, batch_size=16)) == 0.05 * 1600
    assert ema_half_life_images(TrainConfig(iters=2000, batch_size=8, ema_half_life=0.1)) == 1600
    assert ema_half_life_images(TrainConfig(iters=100, batch_size=16, ema_kimg=2)) == 2000


class _Drift(Method):
    """Moves G along a straight line, an equal share per G step, to the end of the run
    (the learning rate is 0, so the optimiser adds nothing): a toy of fine-tuning's drift."""

    def setup(self, ctx):
        ctx.before_optimizer_step(self.drift)

    def drift(self, ctx, step):
        if step.update != "g":
            return
        if "start" not in ctx.state:
            gen = torch.Generator().manual_seed(1)
            ctx.state["start"] = _weights(ctx.generator).clone()
            ctx.state["delta"] = torch.randn(ctx.state["start"].shape, generator=gen)
        share = (ctx.g_steps + 1) / ctx.config.iters
        weights = ctx.state["start"] + share * ctx.state["delta"]
        torch.nn.utils.vector_to_parameters(weights, ctx.generator.parameters())


def _share_of_drift_in_ema(**config):
    ctx = _context(lr_g=0.0, **config)
    train(ctx, _Drift())
    start, delta = ctx.state["start"], ctx.state["delta"]
    assert torch.allclose(_weights(ctx.generator), start + delta, atol=1e-5)  # drifted all the way
    return float((_weights(ctx.g_ema) - start) @ delta / (delta @ delta))


@pytest.mark.parametrize(("iters", "batch_size"), [(100, 16), (400, 4), (50, 8)])
def test_ema_reflects_most_of_a_drift_at_any_budget(iters, batch_size):
    assert _share_of_drift_in_ema(iters=iters, batch_size=batch_size) >= 0.8


def test_a_fixed_2_kimg_ema_lagged_a_100_step_run():
    # the old default: half-life 125 steps at batch 16, longer than the run
    assert _share_of_drift_in_ema(iters=100, batch_size=16, ema_kimg=2.0) < 0.5


@pytest.mark.parametrize("from_pretrained", [True, False])
def test_ema_after_one_step(from_pretrained):
    ctx = _context(iters=1, from_pretrained=from_pretrained, ema_kimg=2.0)
    start = _weights(ctx.generator)
    train(ctx, Method())
    beta = ema_beta(ctx.config, ctx.config.batch_size, rampup=not from_pretrained)
    expected = start + (1 - beta) * (_weights(ctx.generator) - start)
    assert torch.allclose(_weights(ctx.g_ema), expected, atol=1e-7)
    # pretrained: the EMA barely moves (half-life ema_kimg); scratch: ramp-up, nearly G
    moved = (_weights(ctx.g_ema) - start).norm() / (_weights(ctx.generator) - start).norm()
    assert (moved < 0.01) if from_pretrained else (moved > 0.5)


def test_d_warmup_is_a_phase_inside_the_budget():
    ctx = _context(iters=5, d_warmup=2)
    seen = []

    class Spy(Method):
        def after_step(self, ctx, step):
            seen.append((step.index, step.phase_name, step.update))

    before_g = _weights(ctx.generator)
    train(ctx, Spy())
    assert (ctx.g_steps, ctx.d_steps, ctx.warmup_steps) == (3, 5, 2)
    assert ctx.images_seen == 5 * 4
    assert seen[:3] == [(0, "warmup", "d"), (1, "warmup", "d"), (2, "main", "d")]
    assert seen[3] == (2, "main", "g") and len(seen) == 2 + 3 * 2
    assert not torch.equal(before_g, _weights(ctx.generator))


def test_d_warmup_alone_trains_d_only():
    ctx = _context(iters=3, d_warmup=3)
    before_g, before_d = _weights(ctx.generator), _weights(ctx.discriminator)
    train(ctx, Method())
    assert torch.equal(before_g, _weights(ctx.generator))
    assert not torch.equal(before_d, _weights(ctx.discriminator))
    assert (ctx.g_steps, ctx.d_steps, ctx.warmup_steps) == (0, 3, 3)


class TwoPhases(Method):
    """A probe of 2 steps that trains only G's first block, then main on the rest."""

    def __init__(self):
        super().__init__()
        self.events = []

    def phases(self, ctx):
        return [Phase("probe", 2), Phase("main", new_optimizers=True, reset_ema=True)]

    def on_phase_start(self, ctx, phase):
        self.events.append(("start", phase.name, ctx.step, ctx.g_steps))
        first = ctx.generator.named_blocks()[0][1]
        for p in ctx.generator.parameters():
            p.requires_grad_(phase.name != "probe")
        for p in first.parameters():
            p.requires_grad_(True)
        if phase.name == "main":
            self.probe_end = _weights(ctx.generator)
        # the optimisers the previous phase stepped (built after this hook)
        self.optimizers = getattr(self, "optimizers", []) + [ctx.g_optimizer]


def test_method_phases_share_the_budget_and_hooks_run_in_order():
    ctx = _context(iters=6, d_warmup=1)
    start = _weights(ctx.generator)
    last_block = [n for n, _ in ctx.generator.named_blocks()][-1]
    last_start = _weights(dict(ctx.generator.named_blocks())[last_block])
    method = TwoPhases()
    assert [(p.name, p.steps, p.updates) for p in resolve_phases(ctx, method)] == [
        ("warmup", 1, "d"),
        ("probe", 2, "gd"),
        ("main", 3, "gd"),
    ]
    train(ctx, method)
    assert method.events == [
        ("start", "warmup", 0, 0),
        ("start", "probe", 0, 0),
        ("start", "main", 2, 2),
    ]
    assert (ctx.g_steps, ctx.d_steps, ctx.warmup_steps) == (5, 6, 1)
    # the probe trained only the first block: the last one was bitwise untouched then
    probe_last = method.probe_end[-last_start.numel() :]
    assert torch.equal(probe_last, last_start) and not torch.equal(method.probe_end, start)
    # fresh optimisers for main; the EMA restarted from the G that main started from
    optimizers = [*method.optimizers[1:], ctx.g_optimizer]  # warm-up's, probe's, main's
    assert optimizers[1] is optimizers[0]  # warm-up and probe share
    assert optimizers[2] is not optimizers[1]
    assert not torch.equal(_weights(ctx.g_ema), _weights(ctx.generator))


def test_phases_must_fill_the_budget():
    class TooLong(Method):
        def phases(self, ctx):
            return [Phase("probe", 10), Phase("main")]

    class Short(Method):
        def phases(self, ctx):
            return [Phase("main", 1)]

    for method in (TooLong(), Short()):
        with pytest.raises(ValueError, match="budget leaves 4"):
            train(_context(iters=5, d_warmup=1), method)


def test_train_runs_once_per_context():
    ctx = _context(iters=1)
    train(ctx, Method())
    with pytest.raises(RuntimeError, match="phases"):
        train(ctx, Method())


def test_param_groups_set_lr_and_exclude_parameters():
    class Groups(Method):
        def param_groups(self, ctx, network):
            if network == "d":
                return super().param_groups(ctx, network)
            blocks = ctx.generator.named_blocks()
            return [
                {"params": list(blocks[0][1].parameters()), "lr": 0.0},
                {"params": [p for _, b in blocks[2:] for p in b.parameters()]},
            ]  # block 1 left out: never stepped

    ctx = _context(iters=3)
    blocks = ctx.generator.named_blocks()
    before = [_weights(b) for _, b in blocks]
    train(ctx, Groups())
    after = [_weights(b) for _, b in blocks]
    assert torch.equal(before[0], after[0]) and torch.equal(before[1], after[1])
    assert not torch.equal(before[2], after[2])
    assert [g["lr"] for g in ctx.g_optimizer.param_groups] == [0.0, ctx.config.lr_g]


def test_a_registered_observer_masks_gradients_and_after_step_sees_d_outputs():
    calls = {"before": [], "d_real": [], "after": []}

    class Mask(Method):
        def setup(self, ctx):
            self.masked = ctx.generator.named_blocks()[-1][1]
            ctx.before_optimizer_step(self.mask)

        def mask(self, ctx, step):
            calls["before"].append(step.update)
            if step.update == "g":
                assert all(p.grad is not None for p in self.masked.parameters())
                for p in self.masked.parameters():
                    p.grad.zero_()

        def after_step(self, ctx, step):
            calls["after"].append(step.update)
            if step.update == "d":
                assert step.d_real.shape == step.d_fake.shape == (4,)
                calls["d_real"].append(float(step.d_real.detach().mean()))

    ctx = _context(iters=3, beta1=0.0)
    masked = _weights(ctx.generator.named_blocks()[-1][1])
    train(ctx, Mask())
    # Adam with zero gradients from the start leaves the masked block bitwise intact
    assert torch.equal(masked, _weights(ctx.generator.named_blocks()[-1][1]))
    assert calls["before"] == ["d", "g"] * 3 and calls["after"] == ["d", "g"] * 3
    assert len(calls["d_real"]) == 3


@pytest.mark.parametrize("hook", ["observe", "on_phase_end", "before_optimizer_step"])
def test_a_removed_hook_is_refused_not_ignored(hook):
    """Hooks one method each used are gone (issue 21); a third-party method that still
    defines one fails in one line naming the replacement instead of silently not running."""
    method = type("Old", (Method,), {hook: lambda self, ctx, arg: None})()
    with pytest.raises(TypeError, match=f"defines {hook}\\(\\), a hook gtbench no longer"):
        train(_context(iters=1), method)


def test_train_step_phase_and_stage_are_deprecated_names():
    seen = []

    class Old(Method):
        def after_step(self, ctx, step):
            with pytest.warns(DeprecationWarning):
                seen.append((step.phase, step.stage))

    train(_context(iters=1), Old())
    assert seen == [("d", "main"), ("g", "main")]


def test_r1_is_taken_through_the_augmentation_with_respect_to_the_reals():
    """As StyleGAN2-ADA's and DiffAugment's lazy R1: D judges augment(x), the gradient is
    taken with respect to the shots x before augmentation."""
    inputs, pairs = [], []

    class Shift(Method):
        def augment(self, ctx, images):
            out = images + 5.0  # far outside [-1, 1]
            pairs.append((images, out))
            return out

    ctx = _context(iters=1, r1_every=1)
    forward = ctx.discriminator.forward_features

    def spy(x):
        inputs.append(x)
        return forward(x)

    ctx.discriminator.forward_features = spy
    train(ctx, Shift())
    r1 = [(x, out) for x, out in pairs if x.requires_grad and x.is_leaf]
    assert len(r1) == 1 and float(r1[0][0].detach().max()) <= 1.0  # grad w.r.t. raw shots
    assert any(x is r1[0][1] for x in inputs)  # D's R1 pass saw them augmented
    assert float(inputs[0].min()) >= 4.0  # the loss pass saw the augmented reals


def test_flip_mirrors_the_shots():
    ctx = _context(iters=1)
    ctx.real = torch.arange(8.0).view(1, 1, 2, 4)
    batch = ctx.sample_real(64)
    mirrored = ctx.real.flip(3)
    flips = sum(torch.equal(x, mirrored[0]) for x in batch)
    assert 10 < flips < 54 and flips + sum(torch.equal(x, ctx.real[0]) for x in batch) == 64
    ctx = _context(iters=1, flip=False)
    ctx.real = torch.arange(8.0).view(1, 1, 2, 4)
    assert all(torch.equal(x, ctx.real[0]) for x in ctx.sample_real(16))


def test_reg_grad_ratio_measures_the_regulariser_against_the_adversarial_loss():
    import torch.nn.functional as F

    class Double(Method):
        def generator_loss(self, ctx, step):
            return 2 * F.softplus(-step.d_fake).mean()  # gradient = 2 × adversarial

        def discriminator_loss(self, ctx, step):
            return 3 * (F.softplus(step.d_fake).mean() + F.softplus(-step.d_real).mean())

    ctx = _context(iters=10, r1_gamma=0.0)
    train(ctx, Double())
    assert ctx.trainer_metrics["reg_grad_ratio"] == pytest.approx(2.0, rel=1e-4)
    assert ctx.trainer_metrics["reg_grad_ratio_d"] == pytest.approx(3.0, rel=1e-4)
    ctx = _context(iters=2)
    train(ctx, Method())
    assert "reg_grad_ratio" not in ctx.trainer_metrics


def test_batchnorm_statistics_of_the_ema_are_recomputed():
    ctx = _context(iters=2, source="animals-dcgan32", batch_size=2)
    train(ctx, Method())
    g = ctx.g_ema
    norm = next(m for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d))
    seen = []
    handle = norm.register_forward_hook(lambda m, x, y: seen.append(x[0].detach()))
    assert recompute_batchnorm_stats(g, seed=1, device="cpu", n_samples=96, batch_size=32) > 0
    handle.remove()
    inputs = torch.cat(seen)  # 3 batches of 32: the cumulative average of batch means
    assert torch.allclose(norm.running_mean, inputs.mean(dim=(0, 2, 3)), atol=1e-5)
    assert not g.training and int(norm.num_batches_tracked) == 3
    debug = registry.sources().create("debug").load().generator
    assert recompute_batchnorm_stats(debug, seed=0, device="cpu") == 0


def test_suite_augment_setting_points_to_the_diffaugment_method():
    from gtbench.errors import UsageError
    from gtbench.plan.suite import suite_from_mapping

    with pytest.raises(UsageError, match="diffaugment") as error:
        suite_from_mapping({"train": {"augment": "color"}}, "suite file x.toml")
    assert "\n" not in str(error.value) and "[train]" in str(error.value)
    assert "augment" not in TrainConfig.fields()


def test_seeded_init_is_deterministic_and_leaves_the_global_generator_alone():
    """CDC's patch head and MineGAN's miner are initialised inside ctx.seeded_init(): the
    same run seed gives the same weights whatever the global generator's state, and the
    global generator continues after the block as if the block had not run."""

    def init(ctx):
        with ctx.seeded_init():
            return torch.nn.Linear(8, 3).weight.detach().clone()

    a, b, c = _context(seed=5), _context(seed=5), _context(seed=6)
    torch.manual_seed(123)
    first = init(a)
    after_block = torch.rand(4)
    torch.manual_seed(123)
    expected_after = torch.rand(4)
    torch.manual_seed(999)  # another global state: the block's draws do not depend on it
    assert torch.equal(init(b), first)
    assert torch.equal(after_block, expected_after)
    assert not torch.equal(init(c), first)


def test_backward_follows_the_optimisers_groups():
    """A head a method keeps outside D (its parameters only in D's optimiser groups) is
    trained; a D parameter left out of every group gets no gradient and never moves."""

    class OwnHead(Method):
        def setup(self, ctx):
            self.head = torch.nn.Linear(1, 1)
            self.start = self.head.weight.detach().clone()
            self.left_out = next(ctx.discriminator.parameters())
            self.left_out_start = self.left_out.detach().clone()

        def param_groups(self, ctx, network):
            groups = super().param_groups(ctx, network)
            if network == "g":
                return groups
            rest = [p for p in groups[0]["params"] if p is not self.left_out]
            return [{"params": rest}, {"params": list(self.head.parameters())}]

        def discriminator_logits(self, ctx, output, features):
            return self.head(super().discriminator_logits(ctx, output, features)[:, None])[:, 0]

    method = OwnHead()
    ctx = _context(iters=4)
    train(ctx, method)
    assert not torch.equal(method.head.weight.detach(), method.start)
    assert method.left_out.grad is None
    assert torch.equal(method.left_out.detach(), method.left_out_start)
