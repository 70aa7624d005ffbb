"""AdAM (Zhao et al., NeurIPS 2022): adaptation-aware kernel modulation.

Which source kernels matter for the *target* is measured before adapting them:

1. *Importance probing.* Every generator kernel W gets a rank-1 multiplicative
   modulation W ⊙ (1 + u vᵀ) (u over output filters, v over the rest, both 1e-7·randn).
   With W frozen, only (u, v) and D's final block train for a few iterations on the
   target; then the Fisher information (mean squared gradient of the generator's
   adversarial loss, one sample at a time) of u and v scores each output filter:
   F(u_o) + mean(F(v)).
2. *Adaptation.* Filters scoring above the ``quantile``-th percentile (pooled over all
   conv kernels, and separately over all linear ones) keep W frozen and adapt only
   through a fresh modulation; the other filters are fine-tuned directly.

Facts from yunqing-me/AdAM (``_style_gan/AdAM_importance_probing.py``,
``AdAM_main_adaptation.py``, ``_bash_importance_probing.sh``): probing
``--fisher_iter 500`` with ``--num_batch_fisher 250`` batches of 4 (1000 single-image
Fisher samples); G trains only ``u_vector``/``v_vector``/``b_vector``, D its ``final``
layers (and its modulations); ``--fisher_quantile 50`` (Babies; 75 for AFHQ-Cat);
importance of a conv filter = mean(F_u) + F_v per filter; the mapping network, to-RGB
layers, activation biases and noise strengths stay frozen; ``--iter 1500``,
``--batch 4``, ``--lr 0.002``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import TYPE_CHECKING, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from gtbench.api import Generator, Method, Parameter

if TYPE_CHECKING:
    from gtbench.api import TrainContext

INIT_SCALE = 1e-7  # u_vector / v_vector init in the authors' KML modules


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


class _Probe(Method):
    """Plain shared-trainer steps for the probing phase (what trains is set by AdAM)."""

    name = "adam-probe"


class AdAM(Method):
    """Fisher-probed kernel importance; important kernels frozen + rank-1 modulated."""

    description = "importance probing (Fisher) then rank-1 modulation of important kernels"
    paper = (
        "Zhao, Chandrasegaran, Abdollahzadeh, Cheung. Few-shot Image Generation via "
        "Adaptation-Aware Kernel Modulation, NeurIPS 2022"
    )
    code = "github.com/yunqing-me/AdAM (AdAM_importance_probing.py, AdAM_main_adaptation.py)"
    # Probing needs *a* D; with a fresh one (G-only sources) only its last block has
    # trained before the Fisher estimate: it runs, with a weaker importance signal.
    requires_discriminator = False
    example_params: ClassVar = {"fisher_samples": 16}
    parameters: ClassVar = {
        "quantile": Parameter(
            50.0,
            "percentile of filter importance above which W is frozen + modulated "
            "(--fisher_quantile 50, Babies; 75 for AFHQ-Cat)",
        ),
        "probe_iters": Parameter(500, "probing iterations (--fisher_iter 500)"),
        "probe_max_fraction": Parameter(
            1 / 3,
            "cap probing at this fraction of the adaptation budget (the authors' "
            "500 probing : 1500 adaptation iterations)",
        ),
        "fisher_samples": Parameter(
            1000, "single-image Fisher samples (--num_batch_fisher 250 x batch 4)"
        ),
        "skip_blocks": Parameter(
            "mapping",
            "comma-separated G blocks left frozen and unmodulated (AdAM keeps "
            "StyleGAN2's mapping network frozen); names absent from G are ignored",
        ),
    }

    # ------------------------------------------------------------------ structure
    def prepare_generator(self, generator: Generator) -> Generator:
        """Attach a (zero, unimportant) modulation to every kernel: ≥2-D parameters whose
        name contains "weight", outside ``skip_blocks``. Idempotent."""
        if modulations(generator):
            return generator
        skip = {s.strip() for s in str(self.params["skip_blocks"]).split(",") if s.strip()}
        targets = []
        for block_name, block in generator.named_blocks():
            if block_name in skip:
                continue
            for module in block.modules():
                for tensor_name, tensor in module.named_parameters(recurse=False):
                    if tensor.ndim >= 2 and "weight" in tensor_name:
                        targets.append((module, tensor_name, tensor))
        for module, tensor_name, tensor in targets:
            modulation = KernelModulation(tensor.shape, output_axis(module, tensor))
            parametrize.register_parametrization(module, tensor_name, modulation.to(tensor.device))
        return generator

    # ------------------------------------------------------------------ phases
    def fit(self, ctx: TrainContext) -> None:
        from gtbench.api import train

        ctx.generator = self.prepare_generator(ctx.generator).to(ctx.device)
        mods = modulations(ctx.generator)
        if not mods:
            raise ValueError("adam: the generator has no kernel to modulate")
        probe_iters = min(
            int(self.params["probe_iters"]),
            math.floor(float(self.params["probe_max_fraction"]) * ctx.config.iters),
        )
        self.probe(ctx, mods, probe_iters)
        importance = self.fisher_importance(ctx, mods)
        self.decide(ctx, mods, importance)
        ctx.state["adam_probe_iters"] = probe_iters
        train(ctx, self)

    def _init_uv(self, ctx: TrainContext, mods: list) -> None:
        for _, _, _, mod in mods:
            with torch.no_grad():
                for vector in (mod.u, mod.v):
                    noise = torch.randn(vector.shape, generator=ctx.rng)
                    vector.copy_(INIT_SCALE * noise.to(vector.device))

    def probe(self, ctx: TrainContext, mods: list, iters: int) -> None:
        """Train only every kernel's modulation (W frozen) and D's last block for
        ``iters`` steps; D is restored to its starting state afterwards."""
        from gtbench.api import train

        generator, discriminator = ctx.generator, ctx.discriminator
        if discriminator is None:
            raise ValueError("adam needs a discriminator (pretrained or fresh)")
        self._init_uv(ctx, mods)
        for _, _, _, mod in mods:
            mod.important.fill_(True)
        for parameter in generator.parameters():
            parameter.requires_grad_(False)
        for _, _, _, mod in mods:
            mod.u.requires_grad_(True)
            mod.v.requires_grad_(True)
        if iters <= 0:
            return
        d_state = copy.deepcopy(discriminator.state_dict())
        d_flags = [p.requires_grad for p in discriminator.parameters()]
        for parameter in discriminator.parameters():
            parameter.requires_grad_(False)
        for parameter in discriminator.named_blocks()[-1][1].parameters():
            parameter.requires_grad_(True)
        config, progress = ctx.config, ctx.progress
        ctx.config, ctx.progress = dataclasses.replace(config, iters=iters), None
        try:
            train(ctx, _Probe())
        finally:
            ctx.config, ctx.progress = config, progress
            discriminator.load_state_dict(d_state)
            for parameter, flag in zip(discriminator.parameters(), d_flags, strict=True):
                parameter.requires_grad_(flag)

    def fisher_importance(self, ctx: TrainContext, mods: list) -> list[torch.Tensor]:
        """Per-filter importance F(u_o) + mean(F(v)), F = mean over single-image draws of
        the squared gradient of softplus(−D(G(z)))."""
        generator, discriminator = ctx.generator, ctx.discriminator
        assert discriminator is not None
        vectors = [t for _, _, _, mod in mods for t in (mod.u, mod.v)]
        fisher = [torch.zeros_like(t) for t in vectors]
        g_mode, d_mode = generator.training, discriminator.training
        generator.eval()
        discriminator.eval()
        n = max(int(self.params["fisher_samples"]), 1)
        for _ in range(n):
            z = generator.sample_latent(1, generator=ctx.rng, device=ctx.device)
            logit = discriminator(generator(z)).reshape(1, -1).mean()
            grads = torch.autograd.grad(F.softplus(-logit), vectors, allow_unused=True)
            for acc, grad in zip(fisher, grads, strict=True):
                if grad is not None:
                    acc.add_(grad.detach().square())
        generator.train(g_mode)
        discriminator.train(d_mode)
        importance = []
        for k in range(len(mods)):
            f_u, f_v = fisher[2 * k] / n, fisher[2 * k + 1] / n
            importance.append(f_u + f_v.mean())
        return importance

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

    def setup(self, ctx: TrainContext) -> None:
        """Only kernels (fine-tuned rows) and modulations train; everything else in G
        (biases, noise strengths, skipped blocks) stays frozen, as in AdAM."""
        mods = modulations(ctx.generator)
        for parameter in ctx.generator.parameters():
            parameter.requires_grad_(False)
        for _, module, tensor_name, mod in mods:
            original(module, tensor_name).requires_grad_(True)
            mod.u.requires_grad_(True)
            mod.v.requires_grad_(True)
        ctx.state["adam_uv_start"] = {
            f"{path}.{t}": (mod.u.detach().clone(), mod.v.detach().clone())
            for path, _, t, mod in mods
        }

    def extra_metrics(self, ctx: TrainContext) -> dict[str, float]:
        mods = modulations(ctx.generator)
        important = sum(int(mod.important.sum()) for *_, mod in mods)
        total = sum(mod.important.numel() for *_, mod in mods)
        return {
            "adam_modulated_filters": float(important),
            "adam_filters": float(total),
            "adam_probe_iters": float(ctx.state.get("adam_probe_iters", 0)),
        }
