"""FreezeD (Mo et al., 2020): fine-tune G and only the last discriminator blocks.

The first (high-resolution) blocks of a pretrained D hold generic low-level features;
freezing them keeps the discriminator from overfitting the K shots while its last,
low-resolution blocks and head adapt. Only meaningful with the source's own D, so the
method requires one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from gtbench.api import BlockNetwork, Method, Parameter, Uniform

if TYPE_CHECKING:
    from gtbench.api import TrainContext

# FreezeD's StyleGAN fine-tuning at 256 px: 7 discriminator blocks run, the first 4 frozen
# (``--feature_loc 3`` trains progression.6-8 and the linear head).
FROZEN_FRACTION = 4 / 7


def frozen_count(blocks: int, fraction: float, layers: str | int = "") -> int:
    """How many of ``blocks`` blocks to freeze: ``layers`` when given (an int, negative
    meaning all but the last |k|), else ``round(fraction × blocks)`` kept in [0, blocks − 1]
    so at least one block trains."""
    text = str(layers).strip()
    if text:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"layers must be an integer or empty, got {layers!r}") from None
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    return min(max(round(fraction * blocks), 0), blocks - 1)


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


def set_blocks_trainable(network: BlockNetwork, names: list[str], trainable: bool) -> None:
    """Set ``requires_grad`` of every parameter of the named blocks of ``network``."""
    blocks = dict(network.named_blocks())
    for name in names:
        for parameter in blocks[name].parameters():
            parameter.requires_grad_(trainable)


def freeze_blocks(network: BlockNetwork, layers: int) -> list[str]:
    """Set ``requires_grad=False`` on the parameters of the blocks chosen by ``layers``."""
    names = frozen_block_names(network, layers)
    set_blocks_trainable(network, names, False)
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
    version = "2"
    parameters: ClassVar = {
        "fraction": Parameter(
            FROZEN_FRACTION,
            "fraction of D's blocks frozen from the image side, rounded (the authors' "
            "StyleGAN run at 256 px freezes 4 of its 7 blocks, --feature_loc 3)",
            search=Uniform(0.25, 0.85),
        ),
        "layers": Parameter(
            "",
            "explicit number of D blocks frozen instead of `fraction` (negative: all but "
            "the last |k|); empty: from `fraction`",
        ),
    }

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        frozen_count(7, self.params["fraction"], self.params["layers"])  # fail early

    def setup(self, ctx: TrainContext) -> None:
        if ctx.discriminator is None:
            raise ValueError("freeze-d needs a discriminator")
        layers = frozen_count(
            len(ctx.discriminator.block_names()), self.params["fraction"], self.params["layers"]
        )
        self.frozen = freeze_blocks(ctx.discriminator, layers)

    def extra_metrics(self, ctx: TrainContext) -> dict[str, float]:
        return {"frozen_d_blocks": float(len(getattr(self, "frozen", [])))}
