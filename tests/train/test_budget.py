"""Equal, counted budgets: every registered training method, on the debug source and on
a BatchNorm source (animals-dcgan32), takes exactly the same number of G and D optimiser
steps and D-only steps for one configuration — counted by the trainer, not by the
method, and only where a parameter of that network moved: an optimiser hook watching
every step checks the trainer's counts, so a step with G frozen counted as a G step
fails here. A method that cannot comply must say why in ``unequal_budget``."""

from __future__ import annotations

import pytest
import torch
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

from gtbench.plugin import registry
from gtbench.plugin.spec import PluginSpec
from gtbench.train.trainer import TrainConfig, build_context

SOURCES = ("debug", "animals-dcgan32")
# long enough for every method's own phases (RICK's head warm-up, AdAM's probe,
# MineGAN's mining) to take steps
ITERS, WARMUP = 20, 2


def _training_methods() -> list[str]:
    names = []
    for name in registry.methods().names():
        cls = registry.methods().get(name)
        if cls(**dict(cls.example_params)).trains():
            names.append(name)
    return names


class _Watch:
    """Counts, by optimiser hooks, the steps in which a parameter of G (or of D) changed."""

    def __init__(self, ctx) -> None:  # noqa: ANN001
        self.ctx = ctx
        self.moved = {"g": 0, "d": 0}
        self.before: dict[int, list[torch.Tensor]] = {}

    def _network(self, optimizer: torch.optim.Optimizer) -> str | None:
        ids = {id(p) for group in optimizer.param_groups for p in group["params"]}
        if ids & {id(p) for p in self.ctx.generator.parameters()}:
            return "g"
        if ids & {id(p) for p in self.ctx.discriminator.parameters()}:
            return "d"
        return None

    def pre(self, optimizer, args, kwargs) -> None:  # noqa: ANN001
        params = [p for group in optimizer.param_groups for p in group["params"]]
        self.before[id(optimizer)] = [p.detach().clone() for p in params]

    def post(self, optimizer, args, kwargs) -> None:  # noqa: ANN001
        params = [p for group in optimizer.param_groups for p in group["params"]]
        old = self.before.pop(id(optimizer))
        network = self._network(optimizer)
        if network and any(not torch.equal(a, p) for a, p in zip(old, params, strict=True)):
            self.moved[network] += 1


def _counts(source_name: str, method_name: str) -> tuple[tuple[int, int, int, int], dict, str]:
    cls = registry.methods().get(method_name)
    method = registry.methods().create(PluginSpec(method_name, dict(cls.example_params)))
    source = registry.sources().create(source_name)
    reason = method.incompatibility(source.info)
    if reason:
        pytest.skip(reason)
    torch.manual_seed(0)
    networks = source.load(pretrained=method.start_from_pretrained)
    discriminator = networks.discriminator or source.new_discriminator()
    info = source.info
    shots = torch.rand((4, info.channels, info.resolution, info.resolution)) * 2 - 1
    config = TrainConfig(iters=ITERS, batch_size=2, d_warmup=WARMUP, check_every=ITERS)
    ctx = build_context(
        networks.generator,
        discriminator,
        shots,
        config,
        0,
        torch.device("cpu"),
        from_pretrained=method.start_from_pretrained,
    )
    watch = _Watch(ctx)
    handles = [
        register_optimizer_step_pre_hook(watch.pre),
        register_optimizer_step_post_hook(watch.post),
    ]
    try:
        method.fit(ctx)
    finally:
        for handle in handles:
            handle.remove()
    counts = (ctx.g_steps, ctx.d_steps, ctx.warmup_steps, ctx.images_seen)
    return counts, watch.moved, method.unequal_budget


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("method", _training_methods())
def test_every_method_gets_the_same_counted_budget(source: str, method: str) -> None:
    counts, moved, unequal = _counts(source, method)
    g_steps, d_steps, warmup_steps, images = counts
    assert (g_steps, d_steps) == (moved["g"], moved["d"]), (
        f"{method} on {source}: the trainer counted {g_steps} G and {d_steps} D steps, but "
        f"G's parameters changed in {moved['g']} steps and D's in {moved['d']}: a counted "
        "step must move a parameter of its network (a frozen G is a D-only step)"
    )
    assert (d_steps, g_steps + warmup_steps, images) == (ITERS, ITERS, ITERS * 2), (
        f"{method} on {source}: g_steps, d_steps, warmup_steps, images_seen = {counts}"
    )
    if unequal:
        assert len(unequal) > 10, "unequal_budget must say why"
        return
    assert counts == (ITERS - WARMUP, ITERS, WARMUP, ITERS * 2), (
        f"{method} on {source}: g_steps, d_steps, warmup_steps, images_seen = {counts}; "
        "G steps of its own that move no G parameter are D-only steps: count them in the "
        "budget as G steps that train G, or declare unequal_budget"
    )


@pytest.mark.parametrize("method", _training_methods())
def test_planned_phases_give_equal_budgets_at_the_default_suite_budget(method: str) -> None:
    """The tiny runs above round a method's fractions of the budget to nothing; the plan at
    the default suite's budget (300 steps, warm-up 20 for a fresh D) must be equal too."""
    from gtbench.train.trainer import resolve_phases

    cls = registry.methods().get(method)
    instance = registry.methods().create(PluginSpec(method, dict(cls.example_params)))
    if instance.unequal_budget:
        pytest.skip(instance.unequal_budget)
    source = registry.sources().create("animals-dcgan32")
    networks = source.load(pretrained=instance.start_from_pretrained)
    config = TrainConfig(iters=300, batch_size=2, d_warmup=20)
    shots = torch.rand((4, 1, 32, 32)) * 2 - 1
    ctx = build_context(
        networks.generator, networks.discriminator, shots, config, 0, torch.device("cpu")
    )
    ctx.generator = instance.prepare_generator(ctx.generator)
    instance.setup(ctx)  # phases may depend on what setup measured
    phases = resolve_phases(ctx, instance)
    g_steps = sum(p.steps for p in phases if p.trains_generator)
    d_only = [(p.name, p.steps) for p in phases[1:] if not p.trains_generator and p.steps]
    assert (g_steps, sum(p.steps for p in phases)) == (280, 300), (
        f"{method}: D-only phases of its own {d_only} take G steps out of the budget; "
        "make them count as G steps or declare unequal_budget"
    )
