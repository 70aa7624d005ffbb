"""AdaFM (Zhao, Cong, Carin, ICML 2020): adaptive filter modulation of frozen kernels.

The source's convolution kernels W are kept fixed and each (out, in) channel pair gets a
trainable scale and shift, W' = γ ⊙ W + β with γ = 1 and β = 0 at the start, so training
starts exactly at the source generator and only re-weights its filters. Fewer degrees of
freedom than fine-tuning: the K shots can re-style the filters but hardly overwrite them.

What trains, following the authors' code (GANTransferLimitedData, ``method == 'AdaFM'``):
γ and β of every modulated kernel, plus every parameter of the first ``full_blocks``
generator blocks (their low-resolution, latent-facing "specific" layers are fine-tuned
outright). Everything else in G (kernels, biases, linear layers, normalisation
affines, the to-RGB layer) is frozen — the authors' to-RGB conv is frozen *unmodulated*;
here it is modulated like every other conv of a modulated block. Only the discriminator's
last block trains (``d_layers=-1``): the authors' few-shot script (``Flowers25_our.py``,
25 images) sets ``D_Layer_FIX = 6``, which trains only D's last stage (``resnet_5_*`` at
4×4) and its linear head. That needs the source's pretrained D, so AdaFM requires one.

Supported kernels: 2-D convolutions — ``torch.nn`` ``Conv2d`` / ``ConvTranspose2d`` and
any module that owns a parameter ``weight`` shaped (…, out, in, kh, kw), such as
StyleGAN2's modulated and equalised convs. Other layers are frozen, not modulated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn
from torch.nn.utils import parametrize

from gtbench.api import Generator, IntUniform, Method, Parameter, Phase
from gtbench_plugins.methods.freeze_d import freeze_blocks

if TYPE_CHECKING:
    from gtbench.api import TrainContext


class FilterModulation(nn.Module):
    """The parametrization W ↦ γ ⊙ W + β, one (γ, β) per pair of channel dimensions."""

    def __init__(self, shape: torch.Size) -> None:
        super().__init__()
        pair_shape = (*shape[:-2], 1, 1)
        self.gamma = nn.Parameter(torch.ones(pair_shape))
        self.beta = nn.Parameter(torch.zeros(pair_shape))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return self.gamma * weight + self.beta


def _is_2d_kernel(module: nn.Module) -> bool:
    if isinstance(module, nn.modules.conv._ConvNd):
        return module.weight.dim() == 4  # Conv2d / ConvTranspose2d only
    weight = module._parameters.get("weight")
    return isinstance(weight, nn.Parameter) and weight.dim() in (4, 5)


def modulate_convs(module: nn.Module) -> list[nn.Module]:
    """Register :class:`FilterModulation` on every 2-D conv kernel inside ``module``."""
    targets = [m for m in module.modules() if _is_2d_kernel(m)]
    for target in targets:
        if not parametrize.is_parametrized(target, "weight"):
            parametrize.register_parametrization(
                target, "weight", FilterModulation(target.weight.shape)
            )
    return targets


def modulation_parameters(module: nn.Module) -> list[nn.Parameter]:
    """γ and β of every :class:`FilterModulation` inside ``module``."""
    found = []
    for sub in module.modules():
        if isinstance(sub, FilterModulation):
            found.extend([sub.gamma, sub.beta])
    return found


class AdaFM(Method):
    """Frozen source kernels with trainable per-(out, in) scale and shift."""

    description = "frozen G kernels modulated by trainable per-channel-pair scale and shift"
    paper = (
        "Zhao, Cong, Carin. On Leveraging Pretrained GANs for Generation with Limited "
        "Data, ICML 2020"
    )
    code = "github.com/MiaoyunZhao/GANTransferLimitedData (AdaFM in gan_training/models)"
    version = "2"  # frozen_iters added at a default (0) that changes no number
    requires_discriminator = True
    parameters: ClassVar = {
        "full_blocks": Parameter(
            1,
            "first G blocks (latent side) fine-tuned fully instead of modulated; the "
            "authors fully train their latent-facing layers up to 16x16",
            search=IntUniform(0, 2),
        ),
        "d_layers": Parameter(
            -1,
            "D blocks frozen from the image side, FreezeD-style (negative: all but the "
            "last |k|; default -1: only D's last block trains, as the authors' few-shot "
            "script trains only D's last stage and head)",
        ),
        "frozen_iters": Parameter(
            0,
            "first method steps with gamma, beta frozen (only the fully trained first "
            "blocks and D's last block move), then gamma, beta train; the authors' 10000 "
            "(their script unfreezes small_adafm_ at it == 10000); 0: from step 0",
        ),
    }

    def _modulated_blocks(self, generator: Generator) -> list[tuple[str, nn.Module]]:
        blocks = generator.named_blocks()
        full = self.params["full_blocks"]
        if full < 0 or full >= len(blocks):
            raise ValueError(
                f"adafm: full_blocks must be in [0, {len(blocks) - 1}] for this generator"
            )
        return blocks[full:]

    def prepare_generator(self, generator: Generator) -> Generator:
        modulated = [
            m for _, block in self._modulated_blocks(generator) for m in modulate_convs(block)
        ]
        if not modulated:
            raise ValueError(
                "adafm found no 2-D convolution kernel to modulate in the generator's "
                f"blocks {[name for name, _ in self._modulated_blocks(generator)]}"
            )
        return generator

    def setup(self, ctx: TrainContext) -> None:
        generator = ctx.generator
        for _, block in self._modulated_blocks(generator):
            for parameter in block.parameters():
                parameter.requires_grad_(False)
            for parameter in modulation_parameters(block):
                parameter.requires_grad_(True)
        if ctx.discriminator is not None and self.params["d_layers"]:
            freeze_blocks(ctx.discriminator, self.params["d_layers"])

    def frozen_steps(self, ctx: TrainContext) -> int:
        """Steps of the ``frozen`` phase: ``frozen_iters``, at most the method's budget."""
        return max(0, min(int(self.params["frozen_iters"]), ctx.method_steps))

    def phases(self, ctx: TrainContext) -> list[Phase]:
        """``frozen`` (γ, β frozen: the authors' start) for ``frozen_iters`` steps, then
        ``main`` (γ, β train); only ``main`` at the default 0."""
        frozen = self.frozen_steps(ctx)
        return [Phase("frozen", frozen), Phase("main")] if frozen > 0 else [Phase("main")]

    def on_phase_start(self, ctx: TrainContext, phase: Phase) -> None:
        train = phase.name != "frozen"
        for _, block in self._modulated_blocks(ctx.generator):
            for parameter in modulation_parameters(block):
                parameter.requires_grad_(train)

    def extra_metrics(self, ctx: TrainContext) -> dict[str, float]:
        generator = ctx.generator
        trainable = sum(p.numel() for p in generator.parameters() if p.requires_grad)
        return {
            "adafm_trainable_g_params": float(trainable),
            "adafm_frozen_steps": float(self.frozen_steps(ctx)),
        }
