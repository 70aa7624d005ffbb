"""BSA control: only G's normalisation scale/shift train (everything else in G bitwise
frozen), D fully; StyleGAN2's style modulation stands in; sources without either are
refused with the reason."""

from __future__ import annotations

import pytest
import torch

from gtbench.api import SourceInfo
from gtbench.plugin import registry
from gtbench_plugins.methods.bsa import scale_shift_parameters

from ._helpers import CONTEXTS, snapshot


def test_only_batchnorm_scale_and_shift_train_on_a_batchnorm_source() -> None:
    ctx = CONTEXTS["animals-dcgan32"](iters=3)
    g_before, d_before = snapshot(ctx.generator), snapshot(ctx.discriminator)
    method = registry.methods().create("bsa")
    method.fit(ctx)
    norms = {
        f"{name}.{p}"
        for name, m in ctx.generator.named_modules()
        if isinstance(m, torch.nn.BatchNorm2d)
        for p in ("weight", "bias")
    }
    assert norms
    g_after = snapshot(ctx.generator)
    for key, value in g_after.items():
        moved = not torch.equal(value, g_before[key])
        assert moved == (key in norms), key
    d_after = snapshot(ctx.discriminator)
    assert all(not torch.equal(d_after[k], d_before[k]) for k in d_after)
    assert method.extra_metrics(ctx) == {
        "trainable_g_params": float(sum(g_before[k].numel() for k in norms)),
        "bsa_modulation": 0.0,
    }


def test_stylegan2_trains_only_its_style_modulation() -> None:
    source = registry.sources().create(
        "stylegan2:ckpt=random,size=32,channel_max=32,style_dim=64,n_mlp=2"
    )
    generator = source.load(pretrained=False).generator
    method = registry.methods().create("bsa")
    kind, trained = scale_shift_parameters(generator)
    assert kind == "modulation"
    names = {n for n, p in generator.named_parameters() if any(p is q for q in trained)}
    assert names and all(".modulation." in n for n in names)
    assert method.incompatibility(source.info) is None


def test_debug_source_has_no_scale_shift_and_is_refused() -> None:
    method = registry.methods().create("bsa")
    info = SourceInfo(16, 3, (32,), has_discriminator=True, architecture="debug")
    assert "normalisation" in (method.incompatibility(info) or "")
    ctx = CONTEXTS["debug"]()
    with pytest.raises(ValueError, match="no normalisation scale/shift"):
        method.setup(ctx)


def test_lr_scale_sets_the_generator_group_lr() -> None:
    ctx = CONTEXTS["animals-dcgan32"]()
    method = registry.methods().create("bsa:lr_scale=10")
    method.setup(ctx)
    (group,) = method.param_groups(ctx, "g")
    assert group["lr"] == pytest.approx(10 * ctx.config.lr_g)
    assert {id(p) for p in group["params"]} == {id(p) for p in method.trained}
