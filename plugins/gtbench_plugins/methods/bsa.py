"""BSA control: only the generator's normalisation scale and shift train.

After Noguchi & Harada (ICCV 2019), "Image Generation from Small Datasets via Batch
Statistics Adaptation": a pretrained generator is kept frozen and only the scale γ and
shift β of its BatchNorm layers adapt to the target. gtbench runs it as a
*parameter-efficient control* inside the shared adversarial trainer, so the table shows
whether a method beats "train far fewer generator parameters":

- trains: γ and β of every normalisation layer of G (BatchNorm, InstanceNorm,
  GroupNorm, LayerNorm with an affine). A generator without any (StyleGAN2) has its
  per-layer *style modulation* instead — the affine map from w to each modulated conv's
  input-channel scales (``modulation`` in rosinality's code, ``affine`` in NVlabs') —
  which plays the same role (FreezeD's code trains exactly these for its ``--only_adain``
  StyleGAN baseline); those train instead;
- everything else in G stays bitwise frozen (the running BatchNorm statistics still
  follow the batches in train mode, as for every method);
- D is fine-tuned fully with the shared adversarial loss.

Deviations from BSA (nogu-atsu/small-dataset-image-generation, ``configs/default.yml``):
BSA has no discriminator and no adversarial loss; it learns one latent per training image
(zero-init, lr 0.05) and fits the images with an L1 + VGG perceptual loss (0.001), an
earth-mover term pulling the latents to N(0, I) (0.1) and an L2 regulariser on γ/β
(0.02), for 10k iterations with Adam at lr 0.03 for γ/β (and 1e-7 for G's first linear
layer). Here the trainer's loss, budget and learning rate apply (``lr_scale`` multiplies
``lr_g`` for the scale/shift parameters), so the control differs from fine-tuning only
in what trains.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from torch import nn

from gtbench.api import LogUniform, Method, Parameter

if TYPE_CHECKING:
    from gtbench.api import Generator, SourceInfo, TrainContext

NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
MODULATION_NAMES = ("modulation", "affine")
# Built-in architectures with normalisation scale/shift (dcgan: BatchNorm; stylegan2:
# style modulation); others (the debug source) have none.
ARCHITECTURES = ("dcgan", "stylegan2")


def scale_shift_parameters(generator: Generator) -> tuple[str, list[nn.Parameter]]:
    """What BSA trains in ``generator``: (``"normalisation"``, γ and β of every affine
    normalisation layer) or, when it has none, (``"modulation"``, weight and bias of every
    style-modulation affine). Raises ``ValueError`` when there is neither."""
    found: list[nn.Parameter] = []
    for module in generator.modules():
        if isinstance(module, NORMS):
            found += [p for p in (module.weight, module.bias) if isinstance(p, nn.Parameter)]
    if found:
        return "normalisation", found
    for name, module in generator.named_modules():
        if name.rsplit(".", 1)[-1] in MODULATION_NAMES:
            found += list(module.parameters(recurse=False))
    if found:
        return "modulation", found
    raise ValueError(
        "bsa: the generator has no normalisation scale/shift (BatchNorm-like affine) "
        "and no style modulation ('modulation'/'affine' layers) to adapt"
    )


class BSA(Method):
    """Control: only G's normalisation scale/shift (or style modulation) train; D fully."""

    description = "control: only G's BatchNorm scale/shift (StyleGAN2: style modulation) train"
    paper = (
        "control after Noguchi, Harada. Image Generation from Small Datasets via Batch "
        "Statistics Adaptation, ICCV 2019"
    )
    code = "github.com/nogu-atsu/small-dataset-image-generation (trains gamma/beta only)"
    parameters: ClassVar = {
        "lr_scale": Parameter(
            1.0,
            "multiplier on lr_g for the scale/shift parameters (1: the trainer's lr, as "
            "every other method; BSA's own Adam lr is 0.03)",
            search=LogUniform(1.0, 100.0),
        ),
    }

    def incompatibility(self, source: SourceInfo) -> str | None:
        if source.architecture not in ARCHITECTURES:
            return (
                f"bsa trains normalisation scale/shift, which only the "
                f"{', '.join(ARCHITECTURES)} architectures have "
                f"(source architecture: {source.architecture or 'unknown'})"
            )
        return super().incompatibility(source)

    def setup(self, ctx: TrainContext) -> None:
        kind, trained = scale_shift_parameters(ctx.generator)
        for parameter in ctx.generator.parameters():
            parameter.requires_grad_(False)
        for parameter in trained:
            parameter.requires_grad_(True)
        self.kind, self.trained = kind, trained

    def param_groups(self, ctx: TrainContext, network: str) -> list[dict[str, Any]]:
        if network == "d":
            return super().param_groups(ctx, network)
        lr = ctx.config.lr_g * float(self.params["lr_scale"])
        return [{"params": list(self.trained), "lr": lr}]

    def extra_metrics(self, ctx: TrainContext) -> dict[str, float]:
        trained = getattr(self, "trained", [])
        return {
            "trainable_g_params": float(sum(p.numel() for p in trained)),
            "bsa_modulation": float(getattr(self, "kind", "") == "modulation"),
        }
