"""FreezeG control: the generator frozen except its last (highest-resolution) blocks.

A parameter-efficient control, not a paper's method: it answers whether a transfer method
beats simply training fewer generator parameters. The idea is FreezeG's
(bryandlee/FreezeG ``stylegan2/train.py``: ``--finetune_loc k`` trains only the last k
resolutions of a StyleGAN2 generator — their two convs and to-RGB layer — and keeps the
mapping network and the earlier layers frozen), itself inspired by FreezeD. The
discriminator is fine-tuned fully.

The number of trained blocks defaults to a fraction of G's blocks, the mirror image of
FreezeD's default (which trains 3 of its 7 D blocks): ``round(3/7 × blocks)``, at least
one. On gtbench's StyleGAN2 at 256 px (``mapping``, ``4x4`` … ``256x256``: 8 blocks) that
is 3 blocks (64x64, 128x128, 256x256); on the 32 px DCGAN (4 blocks) the last 2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from gtbench.api import Method, Parameter, Uniform
from gtbench_plugins.methods.freeze_d import set_blocks_trainable

if TYPE_CHECKING:
    from gtbench.api import Generator, TrainContext

# FreezeD at 256 px trains 3 of its 7 discriminator blocks; FreezeG mirrors it on G.
TRAINED_FRACTION = 3 / 7


def trained_count(blocks: int, fraction: float, explicit: str | int = "") -> int:
    """How many of G's last blocks train: ``explicit`` when given, else
    ``round(fraction × blocks)``, kept in [1, blocks]."""
    text = str(explicit).strip()
    if text:
        try:
            count = int(text)
        except ValueError:
            raise ValueError(f"blocks must be an integer or empty, got {explicit!r}") from None
        if count < 1:
            raise ValueError(f"blocks must be at least 1, got {count}")
        return min(count, blocks)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return min(max(round(fraction * blocks), 1), blocks)


def freeze_all_but_last(generator: Generator, trained: int) -> list[str]:
    """Freeze every parameter of ``generator`` except those of its last ``trained``
    blocks; return the names of the blocks that train."""
    generator.requires_grad_(False)
    names = generator.block_names()[-trained:]
    set_blocks_trainable(generator, names, True)
    return names


class FreezeG(Method):
    """G frozen except its last blocks; D fully fine-tuned (a parameter-efficient control)."""

    description = "control: G frozen except its last (high-resolution) blocks, D fine-tuned"
    paper = "control after FreezeG (Lee, 2020, github.com/bryandlee/FreezeG), no paper"
    code = "github.com/bryandlee/FreezeG (stylegan2/train.py --finetune_loc)"
    parameters: ClassVar = {
        "fraction": Parameter(
            TRAINED_FRACTION,
            "fraction of G's blocks that train, counted from the image side, rounded, at "
            "least one (3/7: FreezeD's trained share of D, mirrored on G)",
            search=Uniform(0.15, 0.75),
        ),
        "blocks": Parameter("", "explicit number of last G blocks that train; empty: `fraction`"),
    }

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        trained_count(7, self.params["fraction"], self.params["blocks"])  # fail early

    def setup(self, ctx: TrainContext) -> None:
        blocks = len(ctx.generator.block_names())
        trained = trained_count(blocks, self.params["fraction"], self.params["blocks"])
        self.trained = freeze_all_but_last(ctx.generator, trained)

    def extra_metrics(self, ctx: TrainContext) -> dict[str, float]:
        generator = ctx.generator
        return {
            "trained_g_blocks": float(len(getattr(self, "trained", []))),
            "trainable_g_params": float(
                sum(p.numel() for p in generator.parameters() if p.requires_grad)
            ),
        }
