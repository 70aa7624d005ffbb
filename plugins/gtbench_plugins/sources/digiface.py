"""``digiface-dcgan64``: a real pretrained face generator nobody in gtbench trained.

The 64×64 colour DCGAN shipped inside the PyPI package ``gan-face-generate==1.1.1`` (MIT
licence), trained on the DigiFace1M synthetic faces. The wheel is downloaded with
``pip download --no-deps`` (never installed: it pulls in wandb), verified by sha256, and
the member ``gan_face_generate/weights.tar`` is read with ``weights_only=True``. Its
reference-DCGAN keys (``main.0.weight`` … ``main.12.weight``) are mapped onto
:class:`DCGANGenerator`'s blocks and loaded strictly.

It ships **no discriminator** (``has_discriminator=False``): methods that need a
pretrained D are skipped for it, and the others pair it with :meth:`new_discriminator`,
a freshly initialised 64 px DCGAN discriminator (3→64→128→256→512→logit, BatchNorm,
DCGAN initialisation, seeded by ``init_seed``). A random D's early gradients are noise,
so plain fine-tuning at a high learning rate degrades the faces quickly; that is part of
what this source measures.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from gtbench.api import Asset, Discriminator, Parameter, Source, SourceInfo, SourceNetworks, fetch
from gtbench.errors import MissingAssetError
from gtbench_plugins.sources.dcgan import (
    DCGANDiscriminator,
    DCGANGenerator,
    dcgan_init_,
    from_main_state_dict,
)

WEIGHTS = Asset(
    name="digiface-dcgan64",
    filename="gan_face_generate-1.1.1-py3-none-any.whl",
    sha256="24102f4be41d164e44251168ede0458a45e498a888c81493e2aea48529640569",
    pypi="gan-face-generate==1.1.1",
    member="gan_face_generate/weights.tar",
    description="DigiFace1M 64x64 face DCGAN generator (PyPI gan-face-generate 1.1.1, MIT)",
)

RESOLUTION, CHANNELS, LATENT, WIDTH = 64, 3, 100, 64


def read_generator_state(path: str) -> dict[str, torch.Tensor]:
    """The generator's state dict from the wheel's ``weights.tar`` (saved on CUDA, so
    mapped to CPU; ``weights_only`` keeps unpickling safe)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same advice
        raise MissingAssetError(
            f"{path} is not a readable torch checkpoint ({type(error).__name__}); delete it "
            "and run `gtbench fetch digiface-dcgan64`"
        ) from None
    if not isinstance(checkpoint, dict) or "netG_state_dict" not in checkpoint:
        raise MissingAssetError(f"{path} holds no 'netG_state_dict'; not the DigiFace weights")
    return checkpoint["netG_state_dict"]


class DigiFaceSource(Source):
    """DigiFace1M face DCGAN, 64×64 RGB, G only (fresh DCGAN D via new_discriminator)."""

    description = "64x64 colour face DCGAN (generator only) trained on DigiFace1M synthetic faces"
    parameters: ClassVar = {
        "init_seed": Parameter(0, "seed of freshly initialised networks (scratch, fresh D)"),
    }
    assets: ClassVar = (WEIGHTS,)

    @property
    def info(self) -> SourceInfo:
        return SourceInfo(
            resolution=RESOLUTION,
            channels=CHANNELS,
            latent_shape=(LATENT, 1, 1),
            has_discriminator=False,
            architecture="dcgan",
        )

    def _fresh_generator(self) -> DCGANGenerator:
        with torch.random.fork_rng():
            torch.manual_seed(self.params["init_seed"])
            return dcgan_init_(DCGANGenerator(RESOLUTION, CHANNELS, LATENT, WIDTH))

    def load(self, *, pretrained: bool = True) -> SourceNetworks:
        """The pretrained generator and no discriminator; with ``pretrained=False`` a fresh
        generator and a fresh discriminator (the scratch baseline needs both)."""
        if not pretrained:
            return SourceNetworks(self._fresh_generator(), self.new_discriminator())
        generator = DCGANGenerator(RESOLUTION, CHANNELS, LATENT, WIDTH)
        state = read_generator_state(str(fetch(WEIGHTS)))
        try:
            generator.load_state_dict(from_main_state_dict(generator, state), strict=True)
        except (KeyError, RuntimeError) as error:
            first = str(error).strip().splitlines()[0]
            raise MissingAssetError(
                f"DigiFace weights do not fit the 64 px DCGAN generator: {first}"
            ) from None
        return SourceNetworks(generator, None)

    def new_discriminator(self) -> Discriminator:
        """A freshly initialised 64 px DCGAN discriminator (DCGAN init, ``init_seed + 1``)."""
        with torch.random.fork_rng():
            torch.manual_seed(self.params["init_seed"] + 1)
            return dcgan_init_(DCGANDiscriminator(RESOLUTION, CHANNELS, WIDTH))
