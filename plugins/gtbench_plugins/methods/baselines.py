"""The two baselines every leaderboard needs: no adaptation, and no pretraining."""

from __future__ import annotations

from gtbench.api import Method


class SourceOnly(Method):
    """The source generator evaluated on the target as it is (lower bound on adaptation)."""

    description = "no adaptation: the source generator evaluated on the target"

    def trains(self) -> bool:
        return False

    def fit(self, ctx) -> None:  # noqa: ANN001 - TrainContext, see gtbench.train.trainer
        ctx.g_ema = ctx.generator


class Scratch(Method):
    """The source architecture from random initialisation, trained on the K shots only.

    Shows what pretraining is worth: every transfer method should beat it."""

    description = "source architecture from random init trained on the K shots"
    start_from_pretrained = False
