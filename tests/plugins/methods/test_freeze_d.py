"""FreezeD: the first D blocks stay bitwise frozen, the others and G train; the default
freezes the authors' fraction of D's blocks (4 of 7)."""

from __future__ import annotations

import pytest
import torch

from gtbench.api import SourceInfo
from gtbench.errors import PluginError
from gtbench.plugin import registry
from gtbench_plugins.methods.freeze_d import frozen_block_names, frozen_count

from ._helpers import CONTEXTS, snapshot

# the default (4/7 of the blocks, rounded) on each test source: both have 4 D blocks
FROZEN = {
    "debug": (["from_rgb", "down8"], ["down4", "head"]),
    "animals-dcgan32": (["down16", "down8"], ["down4", "logit"]),
}


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_default_freezes_the_first_blocks_rest_trained(source: str) -> None:
    ctx = CONTEXTS[source](iters=3)
    method = registry.methods().create("freeze-d")
    d_before = {name: snapshot(block) for name, block in ctx.discriminator.named_blocks()}
    g_before = snapshot(ctx.generator)
    method.fit(ctx)
    blocks = dict(ctx.discriminator.named_blocks())
    frozen, trained = FROZEN[source]
    for name in frozen:
        for key, value in snapshot(blocks[name]).items():
            assert torch.equal(value, d_before[name][key]), f"{name}.{key} changed"
    for name in trained:
        after = snapshot(blocks[name])
        assert any(not torch.equal(after[k], d_before[name][k]) for k in after), name
    g_after = snapshot(ctx.generator)
    assert any(not torch.equal(g_after[k], g_before[k]) for k in g_after)
    assert method.extra_metrics(ctx) == {"frozen_d_blocks": 2.0}


def test_fraction_is_the_authors_on_each_depth() -> None:
    assert frozen_count(8, 4 / 7) == 5  # StyleGAN2 256 px: from_rgb + 4 blocks, as FreezeD
    assert frozen_count(5, 4 / 7) == 3  # digiface-dcgan64
    assert frozen_count(4, 4 / 7) == 2  # animals-dcgan32
    assert frozen_count(2, 0.99) == 1  # at least one block trains
    assert frozen_count(8, 4 / 7, "-3") == -3  # explicit count wins


def test_explicit_layers_and_negative_layers_keep_the_last_blocks() -> None:
    ctx = CONTEXTS["debug"]()
    assert frozen_block_names(ctx.discriminator, -3) == ["from_rgb"]
    assert frozen_block_names(ctx.discriminator, 0) == []
    with pytest.raises(ValueError, match="trainable"):
        frozen_block_names(ctx.discriminator, 4)
    method = registry.methods().create("freeze-d:layers=1")
    method.setup(ctx)
    assert method.frozen == ["from_rgb"]
    with pytest.raises(PluginError, match="layers"):
        registry.methods().create("freeze-d:layers=two")


def test_requires_a_pretrained_discriminator() -> None:
    method = registry.methods().create("freeze-d")
    info = SourceInfo(16, 3, (32,), has_discriminator=False)
    assert "discriminator" in (method.incompatibility(info) or "")
