"""FreezeG control: only G's last blocks train (the rest bitwise frozen), D trains fully."""

from __future__ import annotations

import pytest
import torch

from gtbench.errors import PluginError
from gtbench.plugin import registry
from gtbench_plugins.methods.freeze_g import trained_count

from ._helpers import CONTEXTS, snapshot

TRAINED = {"debug": ["up16", "to_rgb"], "animals-dcgan32": ["up16", "up32"]}


@pytest.mark.parametrize("source", sorted(CONTEXTS))
def test_only_the_last_generator_blocks_train(source: str) -> None:
    ctx = CONTEXTS[source](iters=3)
    g_before = {name: snapshot(block) for name, block in ctx.generator.named_blocks()}
    d_before = snapshot(ctx.discriminator)
    method = registry.methods().create("freeze-g")
    method.fit(ctx)
    for name, block in ctx.generator.named_blocks():
        after = snapshot(block)
        changed = [k for k in after if not torch.equal(after[k], g_before[name][k])]
        if name in TRAINED[source]:
            assert changed, f"{name} did not train"
        else:
            assert not changed, f"{name} changed: {changed}"
    d_after = snapshot(ctx.discriminator)
    assert all(not torch.equal(d_after[k], d_before[k]) for k in d_after)  # D fully trained
    assert method.extra_metrics(ctx)["trained_g_blocks"] == 2.0


def test_default_is_proportional_and_explicit_count_wins() -> None:
    assert trained_count(8, 3 / 7) == 3  # StyleGAN2 256 px: 64x64, 128x128, 256x256
    assert trained_count(5, 3 / 7) == 2  # digiface-dcgan64
    assert trained_count(2, 0.01) == 1  # at least one block
    assert trained_count(8, 3 / 7, "5") == 5
    with pytest.raises(PluginError, match="blocks"):
        registry.methods().create("freeze-g:blocks=0")
