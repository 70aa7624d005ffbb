"""RICK (Zhao et al., CVPR 2023): dynamic filter freezing and pruning during adaptation.

After a short warm-up of D's final layers (G untouched), the Fisher information of every
generator filter is re-estimated every ``interval`` steps on a fixed set of latents. The
filters above the ``quantile``-th percentile are the source knowledge the target needs:
they are frozen until the next estimate; the filters at or below the ``prune_quantile``-th
percentile are zeroed for good (pruned); all others are fine-tuned. Frozen and pruned
filters get a zero gradient *and* a zero Adam first moment before each generator step,
so the optimiser leaves them bitwise unchanged whatever its betas.

Facts from yunqing-me/RICK (``train_dynamic_update_prune.py`` and its README command):
``--warmup_iter 250`` of ``--iter 1750`` (Babies; 2250 for AFHQ-Cat), ``--batch 2``,
``--lr 0.002``; during warm-up only D's parameters named ``final`` train and G takes no
step; then ``--fisher_freq 50``; Fisher = squared gradient of the non-saturating G loss of
one image at a time from the EMA networks in eval mode, over ``--num_fisher_img 5``
saved noise batches (5 × 2 = 10 images); a conv filter's importance is the mean of its
kernel's Fisher over (in, k, k), pooled over all synthesis convs (and, separately, over
the style-modulation FC rows); ``--fisher_quantile 40`` (Babies; 85 AFHQ-Cat),
``--prune_quantile 0.1`` (a percentile: 0.1 %; 0.075 AFHQ-Cat); pruned indices
accumulate; G's optimiser holds only the synthesis convs (mapping, first 4×4 conv and
to-RGB layers frozen); D also freezes/prunes its filters by its own Fisher.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from gtbench.api import Method, Parameter, Phase, Uniform

from ._fisher import generator_fisher
from .adam import output_axis

if TYPE_CHECKING:
    from gtbench.api import TrainContext, TrainStep

WARMUP = "head-warmup"


class Kernel:
    """One generator kernel with its per-output-filter masks."""

    def __init__(self, name: str, module: nn.Module, tensor_name: str) -> None:
        self.name = name
        self.param: nn.Parameter = getattr(module, tensor_name)
        self.axis = output_axis(module, self.param)
        filters = self.param.shape[self.axis]
        self.frozen = torch.zeros(filters, dtype=torch.bool, device=self.param.device)
        self.pruned = torch.zeros_like(self.frozen)

    @property
    def conv(self) -> bool:
        return self.param.ndim > 2

    def rows(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` (shaped like the kernel) as filters × rest, a view."""
        return tensor.movedim(self.axis, 0).reshape(self.param.shape[self.axis], -1)

    def filter_fisher(self, fisher: torch.Tensor) -> torch.Tensor:
        """Mean Fisher over each filter's entries, as RICK's ``mean(axis=(0, 2, 3, 4))``."""
        return self.rows(fisher).mean(dim=1)

    @torch.no_grad()
    def mask(self, tensor: torch.Tensor, rows: torch.Tensor) -> None:
        """Zero ``rows`` of ``tensor`` (a gradient, a moment or the weight), in place."""
        if bool(rows.any()):
            tensor.movedim(self.axis, 0)[rows] = 0


class RICK(Method):
    """Fisher re-estimated every ``interval`` steps: top filters frozen, bottom pruned."""

    description = "re-estimated filter Fisher: important filters frozen, least ones pruned"
    paper = (
        "Zhao, Du, Abdollahzadeh, Pang, Lin, Yan, Cheung. Exploring Incompatible Knowledge "
        "Transfer in Few-shot Image Generation, CVPR 2023"
    )
    code = "github.com/yunqing-me/RICK (train_dynamic_update_prune.py)"
    # v2: the trainer counts the head warm-up's steps (G frozen) as D-only steps
    version = "2"
    unequal_budget = (
        "the head warm-up (the authors' warm-up iterations) freezes G inside the budget: "
        "its steps are D-only, so G takes fewer counted steps than other methods'"
    )
    requires_discriminator = False  # a fresh D (G-only source) is warmed up by the trainer
    example_params: ClassVar = {"fisher_samples": 4}
    parameters: ClassVar = {
        "quantile": Parameter(
            40.0,
            "percentile of filter Fisher above which a filter is frozen until the next "
            "estimate (--fisher_quantile 40, Babies; 85 for AFHQ-Cat)",
            search=Uniform(25.0, 90.0),
        ),
        "prune_quantile": Parameter(
            0.1,
            "percentile at or below which a filter is zeroed for good (--prune_quantile 0.1, "
            "i.e. 0.1 %; 0.075 for AFHQ-Cat)",
        ),
        "warmup_iters": Parameter(250, "steps training only D's last block (--warmup_iter 250)"),
        "warmup_max_fraction": Parameter(
            1 / 7,
            "cap the warm-up at this fraction of the method's steps (the authors' 250 of "
            "1750 iterations)",
        ),
        "interval": Parameter(50, "steps between Fisher estimates (--fisher_freq 50)"),
        "estimates": Parameter(
            30,
            "short budgets shorten the interval so that at least this many estimates "
            "happen (the authors: 1500 / 50 = 30)",
        ),
        "fisher_samples": Parameter(
            10, "single-image Fisher samples on fixed latents (--num_fisher_img 5 x batch 2)"
        ),
        "skip_blocks": Parameter(
            "mapping",
            "comma-separated G blocks left frozen and unscored (RICK does not train "
            "StyleGAN2's mapping network); names absent from G are ignored",
        ),
    }

    # ------------------------------------------------------------------ set-up, phases
    def warmup_steps(self, method_steps: int) -> int:
        cap = math.floor(float(self.params["warmup_max_fraction"]) * method_steps)
        return max(0, min(int(self.params["warmup_iters"]), cap))

    def interval(self, main_steps: int) -> int:
        """``interval``, shortened so that ``estimates`` estimates fit in ``main_steps``."""
        wanted = math.ceil(max(main_steps, 1) / max(int(self.params["estimates"]), 1))
        return max(1, min(int(self.params["interval"]), wanted))

    def setup(self, ctx: TrainContext) -> None:
        if not 0 <= self.params["prune_quantile"] <= self.params["quantile"] <= 100:
            raise ValueError("rick: need 0 <= prune_quantile <= quantile <= 100")
        skip = {s.strip() for s in str(self.params["skip_blocks"]).split(",") if s.strip()}
        kernels = []
        for block_name, block in ctx.generator.named_blocks():
            if block_name in skip:
                for parameter in block.parameters():
                    parameter.requires_grad_(False)
                continue
            for path, module in block.named_modules():
                for tensor_name, tensor in module.named_parameters(recurse=False):
                    if tensor.ndim >= 2 and "weight" in tensor_name and tensor.requires_grad:
                        name = ".".join(p for p in (block_name, path, tensor_name) if p)
                        kernels.append(Kernel(name, module, tensor_name))
        if not kernels:
            raise ValueError("rick: the generator has no trainable kernel to score")
        self.kernels = kernels
        warmup = self.warmup_steps(ctx.method_steps)
        main = ctx.method_steps - warmup
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=ctx.rng))
        n = max(int(self.params["fisher_samples"]), 1)
        self.latents = ctx.generator.sample_latent(
            n, generator=torch.Generator().manual_seed(seed), device=ctx.device
        )
        ctx.state["rick"] = {
            "warmup": warmup,
            "interval": self.interval(main),
            "estimate_steps": [],  # main-phase step indices at which Fisher was estimated
            "frozen_history": [],
        }
        self._flags: list[list[bool]] = []
        ctx.before_optimizer_step(self.mask_frozen)

    def phases(self, ctx: TrainContext) -> list[Phase]:
        """``head-warmup`` (D's last block only; G frozen, its update slots idle as the
        authors' warm-up iterations, counted in the same budget), then ``main``."""
        warmup = ctx.state["rick"]["warmup"]
        main = Phase("main")
        return [Phase(WARMUP, warmup), main] if warmup > 0 else [main]

    def on_phase_start(self, ctx: TrainContext, phase: Phase) -> None:
        assert ctx.discriminator is not None
        networks = (ctx.generator, ctx.discriminator)
        if phase.name == WARMUP and not self._flags:
            self._flags = [[p.requires_grad for p in net.parameters()] for net in networks]
            for net in networks:
                for parameter in net.parameters():
                    parameter.requires_grad_(False)
            for parameter in ctx.discriminator.named_blocks()[-1][1].parameters():
                parameter.requires_grad_(True)
        elif phase.name == "main" and self._flags:
            for net, flags in zip(networks, self._flags, strict=True):
                for parameter, flag in zip(net.parameters(), flags, strict=True):
                    parameter.requires_grad_(flag)
            self._flags = []

    # ------------------------------------------------------------------ Fisher, decisions
    def filter_fisher(self, ctx: TrainContext) -> list[torch.Tensor]:
        """Per-filter Fisher of every kernel: mean over the fixed latents (one image at a
        time, G and D in eval mode) of the squared gradient of softplus(−D(G(z)))."""
        generator, discriminator = ctx.generator, ctx.discriminator
        assert discriminator is not None
        params = [k.param for k in self.kernels]
        fisher = generator_fisher(generator, discriminator, self.latents, params)
        return [k.filter_fisher(f) for k, f in zip(self.kernels, fisher, strict=True)]

    def estimate(self, ctx: TrainContext) -> None:
        """Re-estimate importance; freeze the top filters, prune the bottom ones for good
        (zeroed now), per kind (conv, linear) as the authors pool them."""
        importance = self.filter_fisher(ctx)
        for kind in {k.conv for k in self.kernels}:
            chosen = [
                (k, imp) for k, imp in zip(self.kernels, importance, strict=True) if k.conv == kind
            ]
            pooled = torch.cat([imp for _, imp in chosen]).double().cpu()
            cut = torch.quantile(pooled, float(self.params["quantile"]) / 100).item()
            prune = torch.quantile(pooled, float(self.params["prune_quantile"]) / 100).item()
            for kernel, imp in chosen:
                imp = imp.double()
                kernel.pruned |= imp <= prune
                kernel.frozen = (imp > cut) & ~kernel.pruned
                kernel.mask(kernel.param.data, kernel.pruned)
        state = ctx.state["rick"]
        state["estimate_steps"].append(ctx.phase_step)
        state["frozen_history"].append(torch.cat([k.frozen for k in self.kernels]).cpu())
        state["importance"] = {
            k.name: imp.cpu() for k, imp in zip(self.kernels, importance, strict=True)
        }
        ctx.log("rick_frozen", float(sum(int(k.frozen.sum()) for k in self.kernels)))
        ctx.log("rick_pruned", float(sum(int(k.pruned.sum()) for k in self.kernels)))

    # ------------------------------------------------------------------ per step
    def after_step(self, ctx: TrainContext, step: TrainStep) -> None:
        if step.phase_name != "main":
            return
        if step.update == "d" and ctx.phase_step % ctx.state["rick"]["interval"] == 0:
            self.estimate(ctx)  # before this step's G update, as the authors' loop top
        elif step.update == "g" and ctx.g_ema is not None:
            # the evaluated EMA drops pruned filters too (an average would keep a remnant)
            ema = dict(ctx.g_ema.named_parameters())
            live = {id(p): n for n, p in ctx.generator.named_parameters()}
            for kernel in self.kernels:
                if bool(kernel.pruned.any()):
                    kernel.mask(ema[live[id(kernel.param)]].data, kernel.pruned)

    def mask_frozen(self, ctx: TrainContext, step: TrainStep) -> None:
        """Before each optimiser step (an observer registered in :meth:`setup`): frozen and
        pruned filters get a zero gradient and a zero Adam first moment, so the step
        leaves them bitwise unchanged (pruned ones stay exactly zero)."""
        if step.update != "g" or step.phase_name != "main":
            return
        optimizer = ctx.g_optimizer
        for kernel in self.kernels:
            rows = kernel.frozen | kernel.pruned
            if kernel.param.grad is None or not bool(rows.any()):
                continue
            kernel.mask(kernel.param.grad, rows)
            moment = optimizer.state.get(kernel.param, {}).get("exp_avg") if optimizer else None
            if moment is not None:
                kernel.mask(moment, rows)

    def extra_metrics(self, ctx: TrainContext) -> dict[str, float]:
        state = ctx.state.get("rick", {})
        history = state.get("frozen_history", [])
        changed = float((history[0] != history[-1]).sum()) if len(history) > 1 else 0.0
        kernels = getattr(self, "kernels", [])
        return {
            "rick_filters": float(sum(k.frozen.numel() for k in kernels)),
            "rick_frozen_filters": float(sum(int(k.frozen.sum()) for k in kernels)),
            "rick_pruned_filters": float(sum(int(k.pruned.sum()) for k in kernels)),
            "rick_estimates": float(len(history)),
            "rick_interval": float(state.get("interval", 0)),
            "rick_warmup_iters": float(state.get("warmup", 0)),
            "rick_frozen_changed": changed,
        }
