"""``animals-dcgan32``: a 32×32 grey DCGAN G+D pair pretrained by gtbench itself.

No pretrained silhouette generator can be downloaded offline, so gtbench pretrains one
on the nine non-cat classes of the Animal-Shape silhouettes (dataset ``animals-others``)
and commits the result, leaving the cat class as an unseen few-shot target. The recipe is
a gtbench command (its exact form, data hash and settings are in the ``.json`` sidecar)::

    gtbench pretrain --source animals-dcgan32 --dataset animals-others \\
        --iters 3000 --batch-size 64 --seed 0 \\
        --out plugins/gtbench_plugins/sources/weights/animals-dcgan32.safetensors

The checkpoint is safetensors (no pickle), its sha256 is pinned below and checked on
every load; the generator stored is the EMA one. A user's own re-run can be used with
``animals-dcgan32:checkpoint=PATH`` (add ``sha256=HEX`` to pin it).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch

from gtbench.api import (
    Discriminator,
    Parameter,
    Source,
    SourceInfo,
    SourceNetworks,
    load_pretrained,
)
from gtbench.errors import MissingAssetError
from gtbench_plugins.sources.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_init_

CHECKPOINT = Path(__file__).resolve().parent / "weights" / "animals-dcgan32.safetensors"
CHECKPOINT_SHA256 = "f473cfad561279b5c5afa33e4b6b311ab68ecd4bef228742d00b90c4980dc544"

RESOLUTION, CHANNELS, LATENT = 32, 1, 100


class AnimalsSource(Source):
    """32 px grey DCGAN G+D pretrained by gtbench on nine Animal-Shape classes (no cat)."""

    domain_dataset = "animals-others"  # its pretraining set: the adaptation measure's source side
    description = "32x32 grey DCGAN G+D pretrained by gtbench on 9 non-cat animal silhouettes"
    parameters: ClassVar = {
        "checkpoint": Parameter("", "safetensors checkpoint (default: the committed one)"),
        "sha256": Parameter("", "expected sha256 of `checkpoint` (default: pinned one)"),
        "width": Parameter(48, "generator channels before the image (must fit the checkpoint)"),
        "d_width": Parameter(48, "discriminator channels after its first layer"),
        "init_seed": Parameter(0, "seed of freshly initialised networks (pretrain, scratch)"),
    }

    @property
    def info(self) -> SourceInfo:
        return SourceInfo(
            resolution=RESOLUTION,
            channels=CHANNELS,
            latent_shape=(LATENT, 1, 1),
            has_discriminator=True,
            architecture="dcgan",
        )

    def _build(self) -> tuple[DCGANGenerator, DCGANDiscriminator]:
        generator = DCGANGenerator(RESOLUTION, CHANNELS, LATENT, self.params["width"])
        discriminator = DCGANDiscriminator(RESOLUTION, CHANNELS, self.params["d_width"])
        return generator, discriminator

    def checkpoint_path(self) -> tuple[Path, str | None]:
        """The checkpoint to load and the sha256 it must have (None: not checked)."""
        given = str(self.params["checkpoint"]).strip()
        pinned = str(self.params["sha256"]).strip() or None
        if not given:
            return CHECKPOINT, pinned or CHECKPOINT_SHA256
        return Path(given).expanduser(), pinned

    def load(self, *, pretrained: bool = True) -> SourceNetworks:
        """The committed pretrained G (EMA) and D; ``pretrained=False``: both freshly
        initialised (DCGAN init, seeded by ``init_seed``)."""
        if not pretrained:
            with torch.random.fork_rng():
                torch.manual_seed(self.params["init_seed"])
                generator, discriminator = self._build()
                dcgan_init_(generator)
                dcgan_init_(discriminator)
            return SourceNetworks(generator, discriminator)
        path, sha256 = self.checkpoint_path()
        g_state, d_state, _ = load_pretrained(path, sha256)
        generator, discriminator = self._build()
        for network, state, part in (
            (generator, g_state, "generator"),
            (discriminator, d_state, "discriminator"),
        ):
            try:
                network.load_state_dict(state, strict=True)
            except RuntimeError as error:
                detail = " ".join(str(error).split())[:300]
                raise MissingAssetError(
                    f"{path}: its {part} does not fit animals-dcgan32 (width="
                    f"{self.params['width']}, d_width={self.params['d_width']}): {detail}"
                ) from None
        return SourceNetworks(generator, discriminator)

    def new_discriminator(self) -> Discriminator:
        """A freshly initialised discriminator of the same architecture (``init_seed + 1``)."""
        with torch.random.fork_rng():
            torch.manual_seed(self.params["init_seed"] + 1)
            return dcgan_init_(self._build()[1])
