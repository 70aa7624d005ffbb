"""FreezeD (Mo et al., 2020): fine-tune G and only the last discriminator blocks.

The first (high-resolution) blocks of a pretrained D hold generic low-level features;
freezing them keeps the discriminator from overfitting the K shots while its last,
low-resolution blocks and head adapt. Only meaningful with the source's own D, so the
method requires one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from gtbench.api import BlockNetwork, IntUniform, Method, Parameter

if TYPE_CHECKING:
    from gtbench.api import TrainContext


def frozen_block_names(network: BlockNetwork, layers: int) -> list[str]:
    """Names of the blocks ``network.named_blocks()[:layers]`` (Python slice semantics).

    A positive ``layers`` freezes the first k blocks; a negative one freezes all but the
    last |k|, which keeps "train the low-resolution end" stable across depths."""
    names = network.block_names()
    if layers >= len(names):
        raise ValueError(
            f"cannot freeze {layers} of the {len(names)} blocks ({', '.join(names)}): "
            "at least one block must stay trainable"
        )
    return names[:layers]


def freeze_blocks(network: BlockNetwork, layers: int) -> list[str]:
    """Set ``requires_grad=False`` on the parameters of the blocks chosen by ``layers``."""
    names = frozen_block_names(network, layers)
    blocks = dict(network.named_blocks())
    for name in names:
        for parameter in blocks[name].parameters():
            parameter.requires_grad_(False)
    return names


class FreezeD(Method):
    """Fine-tune all of G and D except D's first ``layers`` blocks, which stay frozen."""

    description = "fine-tune G and D with D's first (high-resolution) blocks frozen"
    paper = (
        "Mo, Cho, Shin. Freeze the Discriminator: a Simple Baseline for Fine-Tuning GANs, "
        "CVPRW 2020"
    )
    code = "github.com/sangwoomo/FreezeD (stylegan/finetune.py --freeze_D --feature_loc 3)"
    requires_discriminator = True
    parameters: ClassVar = {
        "layers": Parameter(
            -3,
            "D blocks frozen, counted from the image side; negative: all but the last |k| "
            "(default -3: FreezeD's StyleGAN run trains only its 3 lowest-resolution blocks "
            "and the linear head)",
            search=IntUniform(-4, -2),
        ),
    }

    def setup(self, ctx: TrainContext) -> None:
        if ctx.discriminator is None:
            raise ValueError("freeze-d needs a discriminator")
        self.frozen = freeze_blocks(ctx.discriminator, self.params["layers"])

    def extra_metrics(self, ctx: TrainContext) -> dict[str, float]:
        return {"frozen_d_blocks": float(len(getattr(self, "frozen", [])))}
