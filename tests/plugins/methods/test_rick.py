"""RICK: a D-only warm-up of D's last block, then Fisher re-estimated every ``interval``
steps; frozen filters stay bitwise equal (even with Adam momentum), pruned filters are zero
for good, the rest trains. On the debug source and a BatchNorm source."""

from __future__ import annotations

import pytest
import torch

from gtbench.plugin import registry

from ._helpers import bn_context, debug_context, snapshot

CONTEXTS = {"debug": debug_context, "animals-dcgan32": bn_context}


class Recording(registry.methods().get("rick")):  # type: ignore[misc]
    """Per main step: kernels and masks after the D update (after any estimate), kernels
    after the G update; per warm-up step: G and D."""

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self.before: list[tuple[list, list, list]] = []
        self.after: list[list] = []
        self.warm: list[tuple[dict, dict]] = []
        self.importances: list[dict] = []

    def estimate(self, ctx) -> None:  # noqa: ANN001
        super().estimate(ctx)
        self.importances.append(dict(ctx.state["rick"]["importance"]))

    def after_step(self, ctx, step) -> None:  # noqa: ANN001
        super().after_step(ctx, step)
        kernels = [k.param.detach().clone() for k in self.kernels]
        if step.phase_name == "head-warmup":
            if step.update == "g":
                self.warm.append((snapshot(ctx.generator), snapshot(ctx.discriminator)))
        elif step.update == "d":
            frozen = [k.frozen.clone() for k in self.kernels]
            pruned = [k.pruned.clone() for k in self.kernels]
            self.before.append((kernels, frozen, pruned))
        else:
            self.after.append(kernels)


def _rows(kernel, tensor: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
    return kernel.rows(tensor)


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_frozen_filters_bitwise_equal_pruned_zero_rest_trained(source: str) -> None:
    # beta1 = 0.5: Adam momentum would move a frozen filter whose gradient alone is zeroed
    ctx = CONTEXTS[source](iters=15, beta1=0.5)
    method = Recording(estimates=3, prune_quantile=10.0, quantile=50.0, fisher_samples=3)
    method.fit(ctx)
    state = ctx.state["rick"]
    assert state["warmup"] == 2 and state["interval"] == 5  # 13 main steps, 3 estimates
    # the warm-up's G slots move no G parameter: the trainer counts them as D-only steps
    assert len(method.after) == 13 and ctx.g_steps == 13 and ctx.warmup_steps == 2
    frozen_total = pruned_total = 0
    for (before, frozen, pruned), after in zip(method.before, method.after, strict=True):
        moved = False
        for kernel, b, a, f, p in zip(method.kernels, before, after, frozen, pruned, strict=True):
            b_rows, a_rows = _rows(kernel, b), _rows(kernel, a)
            assert torch.equal(a_rows[f], b_rows[f]), f"{kernel.name}: a frozen filter moved"
            assert not bool(a_rows[p].any()) and not bool(b_rows[p].any()), "pruned not zero"
            moved |= not torch.equal(a_rows[~(f | p)], b_rows[~(f | p)])
            frozen_total += int(f.sum())
            pruned_total += int(p.sum())
        assert moved, "no fine-tuned filter trained"
    assert frozen_total > 0 and pruned_total > 0
    metrics = method.extra_metrics(ctx)
    assert metrics["rick_frozen_filters"] > 0 and metrics["rick_pruned_filters"] > 0
    # the evaluated EMA has the pruned filters zeroed too
    ema = dict(ctx.g_ema.named_parameters())
    live = {id(p): n for n, p in ctx.generator.named_parameters()}
    for kernel in method.kernels:
        assert not bool(_rows(kernel, ema[live[id(kernel.param)]].detach())[kernel.pruned].any())


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_importance_is_re_estimated_at_the_interval(source: str) -> None:
    ctx = CONTEXTS[source](iters=15)
    method = Recording(estimates=3, prune_quantile=10.0, fisher_samples=3)
    method.fit(ctx)
    state = ctx.state["rick"]
    assert state["estimate_steps"] == [0, 5, 10]
    assert len(method.importances) == 3
    first, last = method.importances[0], method.importances[-1]
    assert any(not torch.equal(first[k], last[k]) for k in first), "importance never changed"
    # pruning accumulates: a filter once pruned stays pruned
    counts = []
    for _, _, pruned in method.before:
        counts.append(sum(int(p.sum()) for p in pruned))
    assert counts == sorted(counts) and counts[0] > 0


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_warmup_trains_only_ds_last_block(source: str) -> None:
    ctx = CONTEXTS[source](iters=15)
    g_start, d_start = snapshot(ctx.generator), snapshot(ctx.discriminator)
    last = ctx.discriminator.named_blocks()[-1][0]
    method = Recording(estimates=3, fisher_samples=2)
    method.fit(ctx)
    assert len(method.warm) == 2 and ctx.d_steps == 15 and ctx.g_steps == 13
    g_end, d_end = method.warm[-1]
    assert all(torch.equal(v, g_start[k]) for k, v in g_end.items())
    for key, value in d_end.items():
        if key.startswith(f"blocks.{last}."):
            assert not torch.equal(value, d_start[key]), f"{key} did not warm up"
        else:
            assert torch.equal(value, d_start[key]), f"{key} trained during warm-up"
    # afterwards the whole D trains again, and G
    assert all(p.requires_grad for p in ctx.discriminator.parameters())
    assert all(p.requires_grad for p in ctx.generator.parameters())


def test_defaults_follow_the_authors_and_scale_to_short_budgets() -> None:
    method = registry.methods().create("rick")
    assert method.warmup_steps(1750) == 250 and method.interval(1500) == 50
    assert method.warmup_steps(200) == 28 and method.interval(172) == 6


def test_bad_quantiles_fail_in_one_line() -> None:
    ctx = debug_context(iters=4)
    with pytest.raises(ValueError, match="prune_quantile <= quantile"):
        registry.methods().create("rick:quantile=5,prune_quantile=10").fit(ctx)


@pytest.mark.parametrize("source", sorted(CONTEXTS))
@pytest.mark.parametrize(("quantile", "prune"), [(40.0, 10.0), (85.0, 5.0)])
def test_frozen_and_pruned_filters_are_exactly_the_stored_importance_quantiles(
    source: str, quantile: float, prune: float
) -> None:
    """Recomputed by hand with numpy from the last estimate's stored importance: per kind
    (conv, linear) the filters above the quantile-th percentile are frozen, those at or
    below the prune percentile pruned (never frozen), and nothing else."""
    import numpy as np

    ctx = CONTEXTS[source](iters=15)
    method = Recording(estimates=3, quantile=quantile, prune_quantile=prune, fisher_samples=3)
    method.fit(ctx)
    importance = ctx.state["rick"]["importance"]
    for kind in {k.conv for k in method.kernels}:
        kernels = [k for k in method.kernels if k.conv == kind]
        pooled = np.concatenate([importance[k.name].double().numpy() for k in kernels])
        frozen = np.concatenate([k.frozen.cpu().numpy() for k in kernels])
        pruned = np.concatenate([k.pruned.cpu().numpy() for k in kernels])
        newly = pooled <= np.percentile(pooled, prune)
        assert (pruned | ~newly).all()  # every filter at or below the cut is pruned now
        np.testing.assert_array_equal(frozen, (pooled > np.percentile(pooled, quantile)) & ~pruned)
        assert frozen.any() and not frozen.all()
        assert pooled[frozen].min() > pooled[~frozen & ~pruned].max()  # the top is frozen
        assert pooled[newly].max() <= pooled[~pruned].min()  # the bottom is pruned
