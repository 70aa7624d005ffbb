"""FreezeD: the first D blocks stay bitwise frozen, the others and G train."""

from __future__ import annotations

import pytest
import torch

from gtbench import registry
from gtbench.api import SourceInfo
from gtbench_plugins.methods.freeze_d import frozen_block_names

from ._helpers import debug_context, snapshot


def test_first_blocks_frozen_rest_trained() -> None:
    ctx = debug_context(iters=3)
    method = registry.methods().create("freeze-d:layers=2")
    d_before = {name: snapshot(block) for name, block in ctx.discriminator.named_blocks()}
    g_before = snapshot(ctx.generator)
    method.fit(ctx)
    blocks = dict(ctx.discriminator.named_blocks())
    for name in ("from_rgb", "down8"):
        for key, value in snapshot(blocks[name]).items():
            assert torch.equal(value, d_before[name][key]), f"{name}.{key} changed"
    for name in ("down4", "head"):
        after = snapshot(blocks[name])
        assert any(not torch.equal(after[k], d_before[name][k]) for k in after), name
    g_after = snapshot(ctx.generator)
    assert any(not torch.equal(g_after[k], g_before[k]) for k in g_after)
    assert method.extra_metrics(ctx) == {"frozen_d_blocks": 2.0}


def test_negative_layers_keep_the_last_blocks() -> None:
    ctx = debug_context()
    assert frozen_block_names(ctx.discriminator, -3) == ["from_rgb"]
    assert frozen_block_names(ctx.discriminator, 0) == []
    with pytest.raises(ValueError, match="trainable"):
        frozen_block_names(ctx.discriminator, 4)


def test_requires_a_pretrained_discriminator() -> None:
    method = registry.methods().create("freeze-d")
    info = SourceInfo(16, 3, (32,), has_discriminator=False)
    assert "discriminator" in (method.incompatibility(info) or "")
