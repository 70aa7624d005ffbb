"""AdAM (Zhao et al., NeurIPS 2022): adaptation-aware kernel modulation.

Which source kernels matter for the *target* is measured before adapting them, in two
phases of the shared trainer inside one counted budget:

1. ``probe``: every generator kernel W gets a rank-1 multiplicative modulation
   W ⊙ (1 + u vᵀ) (u over output filters, v over the rest, both 1e-7·randn). With W
   frozen, only (u, v) and D's final block train; then the Fisher information (mean
   squared gradient of the generator's adversarial loss, one sample at a time) of u and v,
   taken with the *probed* G and D, scores each output filter: F(u_o) + mean(F(v)). G and
   D then go back to their state before the probe (the authors restart adaptation from
   the source checkpoint).
2. ``main`` (fresh optimisers, fresh EMA): filters scoring above the ``quantile``-th
   percentile (pooled over all conv kernels, and separately over all linear ones) keep W
   frozen and adapt only through a fresh modulation; the other filters are fine-tuned.

u and v train at the authors' learning rate (0.002 × 4/5 = 0.0016, their ``g_reg_ratio``
scaling) in a parameter group of their own; ``uv_lr = 0`` instead calibrates it per phase
so that u, v can travel as far as over the authors' 500 + 1500 iterations.

What adapts, as the authors' ``AdAM_main_adaptation.py`` (StyleGAN2's ``convs`` only):
the synthesis kernels after the first block (the first 4×4 conv and every to-RGB layer
stay frozen and unmodulated: ``freeze_first``, ``freeze_to_rgb``), the style-modulation
layers of those convs (weight and bias) and, on BatchNorm generators, the normalisation
scale and shift (the per-channel affine that plays the style modulation's part);
activation biases and noise strengths stay frozen (the authors zero their gradients).

Facts from yunqing-me/AdAM (``_style_gan/AdAM_importance_probing.py``,
``AdAM_main_adaptation.py``, ``_bash_importance_probing.sh``): probing
``--fisher_iter 500`` with ``--num_batch_fisher 250`` batches of 4 (1000 single-image
Fisher samples); G trains only ``u_vector``/``v_vector``/``b_vector``, D its ``final``
layers (and its modulations); ``--fisher_quantile 50`` (Babies; 75 for AFHQ-Cat);
importance of a conv filter = mean(F_u) + F_v per filter; the mapping network, to-RGB
layers, the first 4×4 conv (``conv1``, outside ``convs``), activation biases and noise
strengths stay frozen; ``--iter 1500``, ``--batch 4``, ``--lr 0.002`` (× 4/5 for all of G,
u and v included).
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn
from torch.nn.utils import parametrize

from gtbench.api import Generator, Method, Parameter, Phase, Uniform

from ._fisher import generator_fisher

if TYPE_CHECKING:
    from gtbench.api import TrainContext, TrainStep

INIT_SCALE = 1e-7  # u_vector / v_vector init in the authors' KML modules
NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


class KernelModulation(nn.Module):
    """Parametrization W ↦ W′ with W′_o = W_o ⊙ (1 + u_o v) for important filters o, and
    W′_o = W_o (trainable) for the others.

    ``important`` is a buffer (saved with the weights), so a generator rebuilt with
    :meth:`AdAM.prepare_generator` loads the adapted state exactly. Important rows of W
    are detached: their gradient is exactly zero and Adam leaves them bitwise intact."""

    def __init__(self, shape: torch.Size, out_axis: int) -> None:
        super().__init__()
        self.out_axis = out_axis
        filters = shape[out_axis]
        self.u = nn.Parameter(torch.zeros(filters))
        self.v = nn.Parameter(torch.zeros(math.prod(shape) // filters))
        self.register_buffer("important", torch.zeros(filters, dtype=torch.bool))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        rows = weight.movedim(self.out_axis, 0)
        flat = rows.reshape(rows.shape[0], -1)
        keep = self.important[:, None]
        base = torch.where(keep, flat.detach(), flat)
        scale = torch.where(keep, 1 + torch.outer(self.u, self.v), torch.ones_like(flat))
        return (base * scale).reshape(rows.shape).movedim(0, self.out_axis)


def output_axis(module: nn.Module, weight: torch.Tensor) -> int:
    """The output-filter axis of a kernel: 1 for transposed convs and StyleGAN2's
    (1, out, in, k, k) modulated weights, 0 otherwise."""
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return 1
    if weight.ndim >= 5 and weight.shape[0] == 1:
        return 1
    return 0


def modulations(generator: nn.Module) -> list[tuple[str, nn.Module, str, KernelModulation]]:
    """(module path, module, tensor name, modulation) for every modulated kernel."""
    found = []
    for path, module in generator.named_modules():
        if not parametrize.is_parametrized(module):
            continue
        for tensor_name, plist in module.parametrizations.items():
            for item in plist:
                if isinstance(item, KernelModulation):
                    found.append((path, module, tensor_name, item))
    return found


def original(module: nn.Module, tensor_name: str) -> nn.Parameter:
    return module.parametrizations[tensor_name].original


# The authors' Adam: lr 0.002 × g_reg_ratio 4/5 for u, v, over 500 probing and 1500
# adaptation iterations (Babies): each entry can move at most ≈ lr × iterations.
AUTHORS_UV_LR = 0.002 * 4 / 5
AUTHORS_STEPS = {"probe": 500, "main": 1500}
UV_LR_CAP = 0.05  # tiny budgets (tests, smoke runs) would otherwise get a huge lr


def filter_importance(
    generator: nn.Module, discriminator: nn.Module, mods: list, latents: torch.Tensor
) -> list[torch.Tensor]:
    """Per-filter importance F(u_o) + mean(F(v)) of every modulated kernel, F = mean over
    single-image draws (``latents``, one per row) of the squared gradient of
    softplus(−D(G(z))), both networks in eval mode (restored afterwards)."""
    vectors = [t for _, _, _, mod in mods for t in (mod.u, mod.v)]
    fisher = generator_fisher(generator, discriminator, latents, vectors)
    return [fisher[2 * k] + fisher[2 * k + 1].mean() for k in range(len(mods))]


def modulation_size(mods: list) -> tuple[float, float]:
    """(max, mean) of |u_o v_j| over the important filters' entries (0, 0 if none)."""
    largest, total, count = 0.0, 0.0, 0
    for *_, mod in mods:
        rows = mod.important
        if not bool(rows.any()):
            continue
        size = torch.outer(mod.u.detach()[rows], mod.v.detach()).abs()
        largest = max(largest, float(size.max()))
        total += float(size.sum())
        count += size.numel()
    return largest, (total / count if count else 0.0)


class AdAM(Method):
    """Fisher-probed kernel importance; important kernels frozen + rank-1 modulated."""

    description = "importance probing (Fisher) then rank-1 modulation of important kernels"
    paper = (
        "Zhao, Chandrasegaran, Abdollahzadeh, Cheung. Few-shot Image Generation via "
        "Adaptation-Aware Kernel Modulation, NeurIPS 2022"
    )
    code = "github.com/yunqing-me/AdAM (AdAM_importance_probing.py, AdAM_main_adaptation.py)"
    version = "3"
    # Probing needs *a* D; with a fresh one (G-only sources) the trainer's warm-up has
    # trained it before probing, and D's last block trains during the probe.
    requires_discriminator = False
    example_params: ClassVar = {"fisher_samples": 16}
    parameters: ClassVar = {
        "quantile": Parameter(
            50.0,
            "percentile of filter importance above which W is frozen + modulated "
            "(--fisher_quantile 50, Babies; 75 for AFHQ-Cat)",
            search=Uniform(25.0, 90.0),
        ),
        "probe_iters": Parameter(500, "probing steps (--fisher_iter 500)"),
        "probe_max_fraction": Parameter(
            0.25,
            "cap probing at this fraction of the method's steps (the authors' 500 probing "
            "of 2000 = 500 + 1500 iterations in all)",
        ),
        "fisher_samples": Parameter(
            1000, "single-image Fisher samples (--num_batch_fisher 250 x batch 4)"
        ),
        "uv_lr": Parameter(
            AUTHORS_UV_LR,
            "learning rate of u, v (the authors' 0.002 x 4/5); 0 = calibrated per phase so "
            "that u, v can travel as far as under the authors' schedule: 0.0016 x (500 "
            "probe | 1500 adaptation iterations) / this phase's steps, at most 0.05",
        ),
        "skip_blocks": Parameter(
            "mapping",
            "comma-separated G blocks left frozen and unmodulated (AdAM keeps "
            "StyleGAN2's mapping network frozen); names absent from G are ignored",
        ),
        "freeze_first": Parameter(
            True,
            "the first G block outside skip_blocks (StyleGAN2's 4x4 conv, a DCGAN's input "
            "block) stays frozen and unmodulated, as the authors' conv1",
        ),
        "freeze_to_rgb": Parameter(
            True,
            "modules named to_rgb stay frozen and unmodulated, as the authors' to-RGB layers",
        ),
    }

    # ------------------------------------------------------------------ structure
    def adapted_modules(self, generator: Generator) -> list[tuple[str, nn.Module]]:
        """(path, module) of every module AdAM adapts: inside G's blocks outside
        ``skip_blocks``, minus the first of them (``freeze_first``) and minus modules on a
        ``to_rgb`` path (``freeze_to_rgb``)."""
        skip = {s.strip() for s in str(self.params["skip_blocks"]).split(",") if s.strip()}
        blocks = [(name, block) for name, block in generator.named_blocks() if name not in skip]
        if self.params["freeze_first"]:
            blocks = blocks[1:]
        found = []
        for block_name, block in blocks:
            for path, module in block.named_modules():
                full = ".".join(p for p in (block_name, path) if p)
                if self.params["freeze_to_rgb"] and "to_rgb" in full:
                    continue
                found.append((full, module))
        return found

    def prepare_generator(self, generator: Generator) -> Generator:
        """Attach a (zero, unimportant) modulation to every adapted kernel: ≥2-D parameters
        whose name contains "weight" (:meth:`adapted_modules`). Idempotent."""
        if modulations(generator):
            return generator
        targets = []
        for _, module in self.adapted_modules(generator):
            for tensor_name, tensor in module.named_parameters(recurse=False):
                if tensor.ndim >= 2 and "weight" in tensor_name:
                    targets.append((module, tensor_name, tensor))
        for module, tensor_name, tensor in targets:
            modulation = KernelModulation(tensor.shape, output_axis(module, tensor))
            parametrize.register_parametrization(module, tensor_name, modulation.to(tensor.device))
        return generator

    # ------------------------------------------------------------------ phases
    def probe_steps(self, method_steps: int) -> int:
        cap = math.floor(float(self.params["probe_max_fraction"]) * method_steps)
        return max(0, min(int(self.params["probe_iters"]), cap))

    def setup(self, ctx: TrainContext) -> None:
        mods = modulations(ctx.generator)
        if not mods:
            raise ValueError("adam: the generator has no kernel to modulate")
        if ctx.discriminator is None:
            raise ValueError("adam needs a discriminator (pretrained or fresh)")
        probe = self.probe_steps(ctx.method_steps)
        ctx.state["adam_probe_iters"] = probe
        ctx.state["adam_uv_lr"] = {
            name: self.uv_lr(steps, name)
            for name, steps in (("probe", probe), ("main", ctx.method_steps - probe))
        }
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=ctx.rng))
        n = max(int(self.params["fisher_samples"]), 1)
        ctx.state["adam_fisher_latents"] = ctx.generator.sample_latent(
            n, generator=torch.Generator().manual_seed(seed), device=ctx.device
        )

    def uv_lr(self, steps: int, phase: str = "main") -> float:
        if self.params["uv_lr"] > 0:
            return float(self.params["uv_lr"])
        if steps <= 0:
            return 0.0
        return min(AUTHORS_UV_LR * AUTHORS_STEPS[phase] / steps, UV_LR_CAP)

    def phases(self, ctx: TrainContext) -> list[Phase]:
        """``probe`` (W frozen, every kernel modulated; u, v and D's last block train),
        then ``main`` with fresh optimisers and a fresh EMA (the probe must not leak)."""
        probe = ctx.state["adam_probe_iters"]
        main = Phase("main", new_optimizers=True, reset_ema=True)
        return [Phase("probe", probe), main] if probe > 0 else [main]

    def _init_uv(self, ctx: TrainContext, mods: list) -> None:
        for _, _, _, mod in mods:
            with torch.no_grad():
                for vector in (mod.u, mod.v):
                    noise = torch.randn(vector.shape, generator=ctx.rng)
                    vector.copy_(INIT_SCALE * noise.to(vector.device))

    def _start_probe(self, ctx: TrainContext, mods: list) -> None:
        """Every filter modulated, W frozen, fresh u, v; D's last block alone trains."""
        assert ctx.discriminator is not None
        ctx.state["adam_restore"] = {
            "g": copy.deepcopy(ctx.generator.state_dict()),
            "d": copy.deepcopy(ctx.discriminator.state_dict()),
            "d_flags": [p.requires_grad for p in ctx.discriminator.parameters()],
        }
        self._init_uv(ctx, mods)
        for _, _, _, mod in mods:
            mod.important.fill_(True)
        for parameter in ctx.generator.parameters():
            parameter.requires_grad_(False)
        for _, _, _, mod in mods:
            mod.u.requires_grad_(True)
            mod.v.requires_grad_(True)
        for parameter in ctx.discriminator.parameters():
            parameter.requires_grad_(False)
        for parameter in ctx.discriminator.named_blocks()[-1][1].parameters():
            parameter.requires_grad_(True)

    def on_phase_start(self, ctx: TrainContext, phase: Phase) -> None:
        mods = modulations(ctx.generator)
        if phase.name == "probe":
            self._start_probe(ctx, mods)
            return
        if phase.name != "main":
            return
        if "adam_importance" not in ctx.state:  # the probe ends: score it, restore G and D
            if "adam_restore" not in ctx.state:  # no probing steps: score the source as is
                self._start_probe(ctx, mods)
            self._score_and_restore(ctx, mods)
        for parameter in ctx.generator.parameters():
            parameter.requires_grad_(False)
        for parameter in self.adapted_parameters(ctx.generator):
            parameter.requires_grad_(True)
        ctx.state["adam_uv_start"] = {
            f"{path}.{t}": (mod.u.detach().clone(), mod.v.detach().clone())
            for path, _, t, mod in mods
        }

    def adapted_parameters(self, generator: Generator) -> list[nn.Parameter]:
        """What trains in the adaptation, as the authors' ``convs``: the adapted kernels
        (their important rows are detached inside the modulation) with u, v; the biases of
        modulated linear layers (StyleGAN2's style modulation); the scale and shift of
        normalisation layers in the adapted blocks. Conv and activation biases, noise
        strengths, the first block, to-RGB layers and skipped blocks stay frozen."""
        found: list[nn.Parameter] = []
        for _, module in self.adapted_modules(generator):
            if isinstance(module, NORMS):
                found += [p for p in module.parameters(recurse=False)]
                continue
            if not parametrize.is_parametrized(module):
                continue
            for plist in module.parametrizations.values():
                for item in plist:
                    if isinstance(item, KernelModulation):
                        found += [plist.original, item.u, item.v]
                        bias = module._parameters.get("bias")
                        if plist.original.ndim == 2 and bias is not None:
                            found.append(bias)
        return found

    def _score_and_restore(self, ctx: TrainContext, mods: list) -> None:
        """Importance from the *probed* G and D; then both go back to their state before
        the probe (as the authors restart adaptation from the source checkpoint) and the
        important filters get a fresh modulation."""
        assert ctx.discriminator is not None
        ctx.state["adam_probe_uv_size"] = modulation_size(mods)
        importance = filter_importance(
            ctx.generator, ctx.discriminator, mods, ctx.state["adam_fisher_latents"]
        )
        restore = ctx.state.pop("adam_restore")
        ctx.generator.load_state_dict(restore["g"])
        ctx.discriminator.load_state_dict(restore["d"])
        for parameter, flag in zip(ctx.discriminator.parameters(), restore["d_flags"], strict=True):
            parameter.requires_grad_(flag)
        self.decide(ctx, mods, importance)

    def decide(self, ctx: TrainContext, mods: list, importance: list[torch.Tensor]) -> None:
        """Important filters: above the quantile of their kind (conv or linear)."""
        q = float(self.params["quantile"]) / 100
        kinds = [original(m, t).ndim > 2 for _, m, t, _ in mods]
        cut = {}
        for kind in set(kinds):
            pooled = torch.cat([imp for imp, k in zip(importance, kinds, strict=True) if k == kind])
            cut[kind] = torch.quantile(pooled.double().cpu(), q).item()
        for (_, _, _, mod), imp, kind in zip(mods, importance, kinds, strict=True):
            mod.important.copy_(imp.double() > cut[kind])
        self._init_uv(ctx, mods)  # the adaptation starts from a fresh modulation
        ctx.state["adam_importance"] = {
            f"{path}.{t}": imp.detach().cpu()
            for (path, _, t, _), imp in zip(mods, importance, strict=True)
        }

    def param_groups(self, ctx: TrainContext, network: str) -> list[dict[str, Any]]:
        """G: u, v in a group of their own with the calibrated ``uv_lr``; the rest at
        ``lr_g``. D: the default."""
        if network != "g":
            return super().param_groups(ctx, network)
        mods = modulations(ctx.generator)
        uv = [t for *_, mod in mods for t in (mod.u, mod.v)]
        ids = {id(t) for t in uv}
        rest = [p for p in ctx.generator.parameters() if id(p) not in ids]
        phase = ctx.phase.name if ctx.phase is not None else "main"
        lr = ctx.state["adam_uv_lr"].get(phase, ctx.state["adam_uv_lr"]["main"])
        return [{"params": rest}, {"params": uv, "lr": lr}]

    def after_step(self, ctx: TrainContext, step: TrainStep) -> None:
        if step.update == "g" and step.phase_name in ("probe", "main"):
            ctx.log("adam_uv_max", modulation_size(modulations(ctx.generator))[0])

    def extra_metrics(self, ctx: TrainContext) -> dict[str, float]:
        mods = modulations(ctx.generator)
        important = sum(int(mod.important.sum()) for *_, mod in mods)
        total = sum(mod.important.numel() for *_, mod in mods)
        probe_max, _ = ctx.state.get("adam_probe_uv_size", (0.0, 0.0))
        uv_max, uv_mean = modulation_size(mods)  # after the main phase
        lrs = ctx.state.get("adam_uv_lr", {})
        return {
            "adam_modulated_filters": float(important),
            "adam_filters": float(total),
            "adam_probe_iters": float(ctx.state.get("adam_probe_iters", 0)),
            "adam_uv_lr_probe": float(lrs.get("probe", 0.0)),
            "adam_uv_lr_main": float(lrs.get("main", 0.0)),
            "adam_probe_uv_max": probe_max,
            "adam_uv_max": uv_max,
            "adam_uv_mean": uv_mean,
        }
