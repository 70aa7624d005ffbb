"""AdAM: finite Fisher importance; important kernels bitwise frozen while their
modulation trains; the other kernels fine-tuned."""

from __future__ import annotations

import torch

from gtbench import registry
from gtbench_plugins.methods.adam import modulations, original

from ._helpers import debug_context


def test_importance_freezing_and_modulation() -> None:
    ctx = debug_context(iters=6)
    source = {k: v.clone() for k, v in ctx.generator.state_dict().items()}
    method = registry.methods().create("adam:probe_iters=2,fisher_samples=4")
    method.fit(ctx)
    assert ctx.state["adam_probe_iters"] == 2
    importance = ctx.state["adam_importance"]
    assert importance and all(
        bool(torch.isfinite(v).all()) and bool((v >= 0).all()) for v in importance.values()
    )
    assert sum(float(v.sum()) for v in importance.values()) > 0
    mods = modulations(ctx.generator)
    assert len(mods) == 4  # fc, up8, up16, to_rgb kernels of the debug generator
    n_important = n_tuned = 0
    for path, module, name, mod in mods:
        weight = original(module, name).detach()
        start = source[f"{path}.{name}"]
        rows = mod.important
        n_important += int(rows.sum())
        n_tuned += int((~rows).sum())
        assert torch.equal(weight[rows], start[rows]), f"{path}: important kernels changed"
        if (~rows).any():
            assert not torch.equal(weight[~rows], start[~rows]), f"{path}: nothing tuned"
        if rows.any():
            u0, v0 = ctx.state["adam_uv_start"][f"{path}.{name}"]
            assert not torch.equal(mod.u.detach()[rows], u0[rows])
            assert not torch.equal(mod.v.detach(), v0)
    assert n_important > 0 and n_tuned > 0
    metrics = method.extra_metrics(ctx)
    assert metrics["adam_modulated_filters"] == n_important
    # biases stay frozen, as in AdAM
    assert torch.equal(ctx.generator.blocks["up8"][1].bias, source["blocks.up8.1.bias"])


def test_rebuilt_generator_loads_the_adapted_weights() -> None:
    ctx = debug_context(iters=3)
    method = registry.methods().create("adam:probe_iters=1,fisher_samples=2")
    method.fit(ctx)
    fresh = registry.sources().create("debug").load(pretrained=True).generator
    rebuilt = method.prepare_generator(fresh)
    rebuilt.load_state_dict(ctx.g_ema.state_dict())
    z = ctx.g_ema.sample_latent(2)
    assert torch.equal(rebuilt.eval()(z), ctx.g_ema(z))
