"""AdAM: a ``probe`` phase inside the budget, importance from the *probed* G and D, then
both restored; important kernels bitwise frozen while their modulation trains (and moves);
the other kernels fine-tuned. On the debug source and a BatchNorm source."""

from __future__ import annotations

import copy
import csv

import pytest
import torch

from gtbench.plugin import registry
from gtbench_plugins.methods.adam import filter_importance, modulations, original

from ._helpers import bn_context, debug_context, snapshot

CONTEXTS = {"debug": debug_context, "animals-dcgan32": bn_context}


class Recording(registry.methods().get("adam")):  # type: ignore[misc]
    """Keeps copies of G and D as the probe ends (before AdAM scores and restores them, as
    the main phase starts) and of D once the main phase has started."""

    def on_phase_start(self, ctx, phase) -> None:  # noqa: ANN001
        if phase.name == "main":
            self.probed = copy.deepcopy(ctx.generator), copy.deepcopy(ctx.discriminator)
        super().on_phase_start(ctx, phase)
        if phase.name == "main":
            self.d_at_main = snapshot(ctx.discriminator)


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_importance_freezing_and_modulation(source: str, tmp_path) -> None:  # noqa: ANN001
    ctx = CONTEXTS[source](iters=8, check_every=2)
    ctx.log_path = tmp_path / "train_log.csv"
    start = {k: v.clone() for k, v in ctx.generator.state_dict().items()}
    method = registry.methods().create("adam:fisher_samples=4")
    method.fit(ctx)
    assert ctx.state["adam_probe_iters"] == 2  # 1/4 of the 8 steps, inside the budget
    assert ctx.g_steps == 8 and ctx.d_steps == 8
    with ctx.log_path.open() as handle:
        assert [r["phase"] for r in csv.DictReader(handle)] == ["probe", "main", "main", "main"]
    importance = ctx.state["adam_importance"]
    assert all(bool(torch.isfinite(v).all()) and bool((v >= 0).all()) for v in importance.values())
    assert sum(float(v.sum()) for v in importance.values()) > 0
    n_important = n_tuned = 0
    for path, module, name, mod in modulations(ctx.generator):
        weight = original(module, name).detach().movedim(mod.out_axis, 0)
        begin = start[f"{path}.{name}"].movedim(mod.out_axis, 0)
        rows = mod.important
        n_important += int(rows.sum())
        n_tuned += int((~rows).sum())
        assert torch.equal(weight[rows], begin[rows]), f"{path}: important kernels changed"
        if (~rows).any():
            assert not torch.equal(weight[~rows], begin[~rows]), f"{path}: nothing tuned"
        if rows.any():
            u0, v0 = ctx.state["adam_uv_start"][f"{path}.{name}"]
            assert not torch.equal(mod.u.detach()[rows], u0[rows])
            assert not torch.equal(mod.v.detach(), v0)
    assert n_important > 0 and n_tuned > 0
    assert method.extra_metrics(ctx)["adam_modulated_filters"] == n_important
    # the first block and to-RGB layers stay as they were (the authors' conv1, to_rgbs);
    # conv biases stay frozen; BatchNorm scale/shift of adapted blocks train
    first = ctx.generator.block_names()[0]
    frozen_paths = {f"blocks.{first}.", "to_rgb"}
    norms = 0
    for key, value in ctx.generator.state_dict().items():
        if "running_" in key or "num_batches" in key or "parametrizations" in key:
            continue
        if any(p in key for p in frozen_paths):
            assert torch.equal(value, start[key]), f"{key} moved"
        elif value.ndim == 1 and key.endswith("bias") and source == "debug":
            assert torch.equal(value, start[key]), f"conv bias {key} moved"
        elif value.ndim == 1 and source == "animals-dcgan32":
            norms += 1
            assert not torch.equal(value, start[key]), f"BatchNorm {key} did not train"
    assert norms > 0 or source == "debug"


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_importance_comes_from_the_probed_networks(source: str) -> None:
    ctx = CONTEXTS[source](iters=8, lr_d=0.05)
    d_source = snapshot(ctx.discriminator)
    method = Recording(fisher_samples=6)
    method.fit(ctx)
    probed_g, probed_d = method.probed
    # the probe trained D's last block, and D was restored before the main phase
    assert any(not torch.equal(p, d_source[k]) for k, p in snapshot(probed_d).items())
    assert all(torch.equal(p, d_source[k]) for k, p in method.d_at_main.items())
    latents = ctx.state["adam_fisher_latents"]
    mods = modulations(probed_g)
    stored = list(ctx.state["adam_importance"].values())
    with_probed = filter_importance(probed_g, probed_d, mods, latents)
    with_source_d = filter_importance(probed_g, ctx.source_discriminator, mods, latents)
    assert all(torch.equal(a, b) for a, b in zip(stored, with_probed, strict=True))
    assert not all(torch.allclose(a, b) for a, b in zip(stored, with_source_d, strict=True))


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_calibrated_modulation_moves(source: str) -> None:
    """With the calibrated u, v learning rate (``uv_lr=0``) |u vᵀ| leaves its 1e-14 start
    by orders of magnitude; at the trainer's lr it stays tiny."""
    sizes = {}
    for spec in ("adam:fisher_samples=2,uv_lr=0", "adam:fisher_samples=2,uv_lr=0.0002"):
        ctx = CONTEXTS[source](iters=12)
        method = registry.methods().create(spec)
        method.fit(ctx)
        sizes[spec] = method.extra_metrics(ctx)["adam_uv_max"]
    calibrated, plain = sizes.values()
    assert calibrated > 1e-3
    assert calibrated > 100 * plain


def test_rebuilt_generator_loads_the_adapted_weights() -> None:
    ctx = debug_context(iters=4)
    method = registry.methods().create("adam:fisher_samples=2")
    method.fit(ctx)
    fresh = registry.sources().create("debug").load(pretrained=True).generator
    rebuilt = method.prepare_generator(fresh)
    rebuilt.load_state_dict(ctx.g_ema.state_dict())
    z = ctx.g_ema.sample_latent(2)
    assert torch.equal(rebuilt.eval()(z), ctx.g_ema.eval()(z))


def test_without_probing_the_source_networks_are_scored() -> None:
    ctx = debug_context(iters=4)
    method = registry.methods().create("adam:probe_iters=0,fisher_samples=2")
    method.fit(ctx)
    assert ctx.state["adam_probe_iters"] == 0 and ctx.g_steps == 4
    assert ctx.state["adam_importance"]
    assert method.extra_metrics(ctx)["adam_modulated_filters"] > 0


def test_uv_learning_rate_is_the_authors_by_default() -> None:
    ctx = debug_context(iters=8)
    method = registry.methods().create("adam:fisher_samples=2")
    method.fit(ctx)
    metrics = method.extra_metrics(ctx)
    assert metrics["adam_uv_lr_probe"] == metrics["adam_uv_lr_main"] == 0.002 * 4 / 5
    groups = ctx.g_optimizer.param_groups
    assert [g["lr"] for g in groups] == [ctx.config.lr_g, 0.002 * 4 / 5]


def test_stylegan2_adapts_the_authors_convs_only() -> None:
    """The authors' trainable set: synthesis convs after the first 4×4 conv and their style
    modulation (weight, bias); not the mapping, conv1, to-RGB, noise or activation bias."""
    source = registry.sources().create(
        "stylegan2:ckpt=random,size=16,channel_max=16,style_dim=16,n_mlp=2"
    )
    method = registry.methods().create("adam")
    generator = method.prepare_generator(source.load(pretrained=False).generator)
    modulated = {(id(m), t) for _, m, t, _ in modulations(generator)}
    blocks = dict(generator.named_blocks())
    expected = set()
    for res in ("8x8", "16x16"):
        for conv in ("conv_up", "conv"):
            layer = getattr(blocks[res], conv).conv
            expected |= {(id(layer), "weight"), (id(layer.modulation), "weight")}
    assert modulated == expected
    ids = {id(p) for p in method.adapted_parameters(generator)}
    names = {n for n, p in generator.named_parameters() if id(p) in ids}
    assert all(".u" in n or ".v" in n or "original" in n or "modulation.bias" in n for n in names)
    assert any("modulation.bias" in n for n in names)
    assert not any(k in n for n in names for k in ("noise", "activate", "to_rgb", "4x4", "style"))


@pytest.mark.parametrize("source", sorted(CONTEXTS))
@pytest.mark.parametrize("quantile", [50.0, 75.0])
def test_important_filters_are_exactly_the_top_quantile_of_the_stored_importance(
    source: str, quantile: float
) -> None:
    """Recomputed by hand with numpy from the stored importance: per kind (conv, linear)
    the filters above the quantile-th percentile are modulated, and only those."""
    import numpy as np

    ctx = CONTEXTS[source](iters=8)
    method = registry.methods().create(f"adam:fisher_samples=4,quantile={quantile}")
    method.fit(ctx)
    importance = ctx.state["adam_importance"]
    mods = {
        f"{p}.{t}": (original(m, t).ndim > 2, mod) for p, m, t, mod in modulations(ctx.generator)
    }
    for kind in {k for k, _ in mods.values()}:
        keys = [k for k, (conv, _) in mods.items() if conv == kind]
        pooled = np.concatenate([importance[k].double().numpy() for k in keys])
        cut = np.percentile(pooled, quantile)
        chosen = np.concatenate([mods[k][1].important.numpy() for k in keys])
        np.testing.assert_array_equal(chosen, pooled > cut)
        assert chosen.any() and not chosen.all()
        assert pooled[chosen].min() > pooled[~chosen].max()  # the top, not the bottom
        assert abs(chosen.mean() - (1 - quantile / 100)) <= 1 / len(pooled) + 1e-9
