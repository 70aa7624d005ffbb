"""The one GAN fine-tuning loop every method shares.

Non-saturating logistic loss, lazy R1 penalty with respect to the reals (its own D pass,
as the originals' lazy regularisation; through the method's augmentation, as ADA's and
DiffAugment's code), Adam, an exponential moving average of the
generator (what gets evaluated; StyleGAN2-ADA's ramp-up only when training from scratch)
and horizontal flips of the shots. Methods change it only through the hooks and phases
of :class:`gtbench.train.method.Method`; the D-only warm-up and every method phase run inside
one budget of ``config.iters`` steps, and the trainer counts the optimiser steps. All
randomness flows from ``ctx.rng`` (a CPU generator), so a run is deterministic on CPU for
a fixed seed.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from gtbench.errors import DivergedError
from gtbench.plugin.networks import Discriminator, Generator
from gtbench.train.phases import Phase

if TYPE_CHECKING:
    from gtbench.train.method import Method

# Part of every run_id: bump whenever a change to the trainer can change a number.
# 4: the EMA's half-life is a share of the run (ema_half_life), not a fixed 2 kimg
TRAINER_VERSION = "4"

WARMUP = "warmup"


@dataclass(frozen=True)
class TrainConfig:
    """The trainer's hyper-parameters (all part of a cell's identity)."""

    iters: int = 300  # the whole budget: D-only warm-up and every method phase
    batch_size: int = 16
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.0
    beta2: float = 0.99
    r1_gamma: float = 1.0
    r1_every: int = 4
    # The evaluated EMA's half-life as a share of the run's images (iters × batch_size):
    # 5 % lets the EMA show ≥ 90 % of what a steady drift changed, at any budget (the
    # originals' half-lives are a small share of their runs; a fixed 2 kimg was longer
    # than a 100-step run). ``ema_kimg`` > 0 sets an absolute half-life instead.
    ema_half_life: float = 0.05
    ema_kimg: float = 0.0
    ema_rampup: float = 0.05  # from-scratch training only; none from a pretrained start
    flip: bool = True  # mirror each drawn shot with probability 1/2 (as the originals)
    d_warmup: int = 0  # first steps train D only (a fresh D's early gradients are noise)
    check_every: int = 10  # NaN/inf check and train-log row (a device sync)

    @classmethod
    def fields(cls) -> list[str]:
        return list(cls.__dataclass_fields__)


@dataclass
class TrainStep:
    """What one update computed, handed to the method's hooks.

    ``update`` says which network this update trains: ``"d"`` (``fake`` detached,
    ``real``/``d_real`` set) or ``"g"`` (``real`` and ``d_real`` None). ``phase_name`` is
    the name of the running :class:`Phase` (``"warmup"``, ``"main"``, a method's
    ``"probe"``...): *phase* means a stretch of the budget and nothing else. Features are
    per block, in block order."""

    index: int
    update: str  # "d" or "g"
    z: torch.Tensor
    fake: torch.Tensor
    d_fake: torch.Tensor
    d_fake_features: list[torch.Tensor]
    g_features: list[torch.Tensor] = field(default_factory=list)
    real: torch.Tensor | None = None
    d_real: torch.Tensor | None = None
    d_real_features: list[torch.Tensor] = field(default_factory=list)
    phase_name: str = "main"
    # ‖∇ extra‖ / ‖∇ adversarial‖ of this update when the trainer measured it (0-d tensor)
    reg_grad_ratio: torch.Tensor | None = None

    @property
    def phase(self) -> str:
        """Deprecated: ``update`` (``"d"`` or ``"g"``); *phase* names a :class:`Phase`."""
        warnings.warn(
            "TrainStep.phase is now TrainStep.update ('d' or 'g'); a phase is a Phase",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.update

    @property
    def stage(self) -> str:
        """Deprecated: ``phase_name``, the name of the running :class:`Phase`."""
        warnings.warn(
            "TrainStep.stage is now TrainStep.phase_name", DeprecationWarning, stacklevel=2
        )
        return self.phase_name


@dataclass
class TrainContext:
    """Everything a method may read or change while adapting a generator.

    Counters (``g_steps``, ``d_steps``, ``warmup_steps``, ``images_seen``) belong to the
    trainer: methods read them, never write them."""

    generator: Generator
    discriminator: Discriminator | None
    real: torch.Tensor  # the K shots, float in [-1, 1], on ``device``
    config: TrainConfig
    device: torch.device
    rng: torch.Generator
    from_pretrained: bool = True  # False: no pretrained start (EMA ramp-up applies)
    g_ema: Generator | None = None
    step: int = 0  # index of the current step in the whole budget
    phase: Phase | None = None  # the running phase
    phase_step: int = 0  # index of the current step inside ``phase``
    # optimiser steps that moved a parameter of that network (:func:`_moves`)
    g_steps: int = 0  # generator optimiser steps taken
    d_steps: int = 0  # discriminator optimiser steps taken (D-only steps included)
    warmup_steps: int = 0  # D-only steps: D stepped and no G parameter did
    images_seen: int = 0  # real images shown to D in its updates
    state: dict[str, Any] = field(default_factory=dict)  # a method's own bookkeeping
    # values the trainer measured (``reg_grad_ratio``...), merged into ``method_metrics``
    trainer_metrics: dict[str, float] = field(default_factory=dict)
    # wall seconds the trainer measured: ``setup`` (prepare_generator + Method.setup), each
    # phase by name (its start hook and steps, curve evaluations left out) and
    # ``phase_hooks`` (on_phase_start of every phase: AdAM's importance pass...)
    seconds: dict[str, float] = field(default_factory=dict)
    progress: Callable[[int, int, dict[str, float]], None] | None = None
    log_path: Path | None = None  # train_log.csv written every ``check_every`` steps
    # steps (1-based, after the step) at which ``on_curve(step, g_ema)`` is called
    curve_steps: tuple[int, ...] = ()
    on_curve: Callable[[int, Generator], None] | None = None
    _source_generator: Generator | None = None
    _source_discriminator: Discriminator | None = None
    g_optimizer: torch.optim.Optimizer | None = None
    d_optimizer: torch.optim.Optimizer | None = None
    # called after backward, before every optimiser step (see ``before_optimizer_step``)
    _before_step: list[Callable[[TrainContext, TrainStep], None]] = field(default_factory=list)

    def before_optimizer_step(self, observer: Callable[[TrainContext, TrainStep], None]) -> None:
        """Register ``observer(ctx, step)``, called after backward and before the optimiser
        step of every update that steps (``step.update``): gradients are in ``p.grad`` and
        the optimiser's state is there to mask (RICK's frozen and pruned filters). An
        observer a method registers in ``setup``, not a hook every method carries."""
        self._before_step.append(observer)

    def __post_init__(self) -> None:
        # Frozen copies of the starting networks are taken now, before any method
        # changes them, but only materialised if a method asks (memory on big models).
        self._initial_g_state = copy.deepcopy(self.generator)
        self._initial_d_state = (
            copy.deepcopy(self.discriminator) if self.discriminator is not None else None
        )
        self._logged: dict[str, list[Any]] = {}
        self._trained = False

    @property
    def source_generator(self) -> Generator:
        """The generator as it was before adaptation: frozen, in eval mode."""
        if self._source_generator is None:
            self._source_generator = _frozen(self._initial_g_state)
        return self._source_generator

    @property
    def source_discriminator(self) -> Discriminator | None:
        """The discriminator as it was before adaptation (frozen), or None."""
        if self._source_discriminator is None and self._initial_d_state is not None:
            self._source_discriminator = _frozen(self._initial_d_state)
        return self._source_discriminator

    @property
    def method_steps(self) -> int:
        """Steps left to the method's phases: ``iters`` minus the D-only warm-up."""
        return self.config.iters - min(max(self.config.d_warmup, 0), self.config.iters)

    def sample_real(self, n: int) -> torch.Tensor:
        """A batch of ``n`` shots drawn with replacement, each mirrored with probability
        1/2 when ``config.flip``."""
        index = torch.randint(len(self.real), (n,), generator=self.rng)
        batch = self.real[index.to(self.real.device)]
        if self.config.flip:
            mirror = torch.rand((n,), generator=self.rng) < 0.5
            batch = torch.where(mirror.to(batch.device).view(-1, 1, 1, 1), batch.flip(3), batch)
        return batch

    @contextlib.contextmanager
    def seeded_init(self) -> Iterator[None]:
        """A block in which torch's global CPU generator is seeded from the run's ``rng``
        (one draw) and restored afterwards: for modules a method creates during the run
        (a head, a miner), whose initialisation draws from the global generator. The
        run stays deterministic and nothing outside the block sees the re-seeding."""
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self.rng))
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(seed)  # CPU only; same on any device
            yield

    def log(self, name: str, value: float | torch.Tensor) -> None:
        """Log a scalar of this step (``ewc_penalty``, ``aug_p``...): the train log gets the
        mean of the values logged since its previous row, in a column ``name``. Tensors
        are kept detached (no device sync until the row is written)."""
        if isinstance(value, torch.Tensor):
            value = value.detach().float().mean()
        self._logged.setdefault(name, []).append(value)


def _frozen(module: torch.nn.Module) -> Any:
    module = copy.deepcopy(module)
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def _logits(output: torch.Tensor) -> torch.Tensor:
    return output.reshape(output.shape[0], -1).mean(dim=1)


def ema_half_life_images(config: TrainConfig) -> float:
    """The EMA's half-life in images: ``ema_kimg`` thousand when set, otherwise the share
    ``ema_half_life`` of the run's ``iters × batch_size`` images."""
    if config.ema_kimg > 0:
        return config.ema_kimg * 1000
    return config.ema_half_life * config.iters * config.batch_size


def ema_beta(config: TrainConfig, images_seen: int, rampup: bool = True) -> float:
    """StyleGAN2-ADA's EMA decay for the half-life :func:`ema_half_life_images`, ramped up
    over the first images (``ema_rampup``) only when ``rampup`` (training from scratch)."""
    ema_images = ema_half_life_images(config)
    if rampup and config.ema_rampup > 0:
        ema_images = min(ema_images, images_seen * config.ema_rampup)
    return 0.5 ** (config.batch_size / max(ema_images, 1e-8))


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    """ema ← model + β (ema − model) for parameters; buffers are copied (BatchNorm
    statistics are recomputed for the EMA weights after training:
    :func:`recompute_batchnorm_stats`)."""
    for p_ema, p in zip(ema.parameters(), model.parameters(), strict=True):
        p_ema.lerp_(p.detach(), 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), model.buffers(), strict=True):
        b_ema.copy_(b)


@torch.no_grad()
def recompute_batchnorm_stats(
    generator: Generator,
    *,
    seed: int,
    device: torch.device | str,
    n_samples: int = 1024,
    batch_size: int = 64,
) -> int:
    """Recompute the BatchNorm running statistics of ``generator`` (the EMA) for its own
    weights, in place, and return how many BatchNorm layers it has (0: nothing done).

    The EMA's parameters are an average over training, so the live G's running
    statistics (which follow the last iterates) do not belong to them. Here every
    BatchNorm layer's statistics are reset and re-estimated as a cumulative average over
    ``n_samples`` prior latents (seeded, ``batch_size`` at a time), forward passes in
    train mode without gradients; the network is left in eval mode."""
    norms = [m for m in generator.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    was_training = generator.training
    latents = generator.sample_latent(
        n_samples, generator=torch.Generator().manual_seed(seed), device="cpu"
    )
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative moving average
    generator.train()
    try:
        for start in range(0, n_samples, batch_size):
            chunk = latents[start : start + batch_size]
            if len(chunk) > 1:  # train-mode BatchNorm needs more than one value
                generator(chunk.to(device))
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        generator.train(was_training)
    generator.eval()
    return len(norms)


def build_context(
    generator: Generator,
    discriminator: Discriminator | None,
    real: torch.Tensor,
    config: TrainConfig,
    seed: int,
    device: torch.device,
    *,
    from_pretrained: bool = True,
) -> TrainContext:
    """A context with a seeded CPU generator, the networks and shots on ``device``."""
    rng = torch.Generator().manual_seed(seed)
    return TrainContext(
        generator=generator.to(device),
        discriminator=discriminator.to(device) if discriminator is not None else None,
        real=real.to(device),
        config=config,
        device=device,
        rng=rng,
        from_pretrained=from_pretrained,
    )


def curve_steps(iters: int, points: int) -> tuple[int, ...]:
    """``points`` evenly spaced steps (1-based, the last one ``iters``) at which a curve
    evaluates the EMA."""
    if iters <= 0 or points <= 0:
        return ()
    return tuple(sorted({max(1, round(iters * k / points)) for k in range(1, points + 1)}))


def resolve_phases(ctx: TrainContext, method: Method) -> list[Phase]:
    """The run's phases with concrete step counts: the D-only warm-up (when
    ``d_warmup`` > 0), then the method's phases filling ``ctx.method_steps`` exactly."""
    config = ctx.config
    warmup = min(max(config.d_warmup, 0), config.iters)
    budget = ctx.method_steps
    declared = list(method.phases(ctx))
    if not declared:
        raise ValueError(f"method {method.name!r} declared no phases")
    fixed = sum(p.steps for p in declared if p.steps is not None)
    open_ended = [p for p in declared if p.steps is None]
    if len(open_ended) > 1:
        raise ValueError(f"method {method.name!r}: only one phase may take the rest (steps=None)")
    if fixed > budget or (not open_ended and fixed != budget):
        raise ValueError(
            f"method {method.name!r}: its phases take {fixed} steps but the budget leaves "
            f"{budget} (iters {config.iters} - warm-up {warmup})"
        )
    phases = [replace(p, steps=budget - fixed) if p.steps is None else p for p in declared]
    if warmup:
        phases.insert(0, Phase(WARMUP, warmup, updates="d"))
    return phases


def _optimizer(
    ctx: TrainContext, method: Method, network: str, lr: float
) -> torch.optim.Adam | None:
    groups = [dict(g) for g in method.param_groups(ctx, network)]
    groups = [g for g in groups if list(g["params"])]
    if not groups:
        return None
    betas = (ctx.config.beta1, ctx.config.beta2)
    return torch.optim.Adam(groups, lr=lr, betas=betas)


def _trained(optimizer: torch.optim.Optimizer | None, module: torch.nn.Module) -> list[Any]:
    """What backward computes gradients for: the parameters of the optimiser's groups that
    require a gradient — the network's own first, in module order, then any a method
    added to a group from outside the network (a head of its own). Parameters left out
    of every group get no gradient."""
    if optimizer is None:
        return []
    grouped = [p for group in optimizer.param_groups for p in group["params"]]
    in_groups = {id(p) for p in grouped}
    own = list(module.parameters())
    mine = {id(p) for p in own}
    return [p for p in own if p.requires_grad and id(p) in in_groups] + [
        p for p in grouped if p.requires_grad and id(p) not in mine
    ]


def _moves(optimizer: torch.optim.Optimizer | None) -> bool:
    """Whether ``optimizer.step()`` is about to move a parameter: some parameter of its
    (non-empty) groups has a gradient. A step of a network whose parameters are all
    frozen, or that received no gradient, is not a step of that network."""
    if optimizer is None:
        return False
    return any(p.grad is not None for group in optimizer.param_groups for p in group["params"])


def _check_finite(values: dict[str, torch.Tensor], step: int) -> None:
    for name, value in values.items():
        if not bool(torch.isfinite(value).all()):
            raise DivergedError(f"{name} became {value.item()} at step {step}")


def _norm(grads: list[torch.Tensor | None]) -> torch.Tensor:
    squares = [g.detach().float().square().sum() for g in grads if g is not None]
    return torch.stack(squares).sum().sqrt() if squares else torch.zeros(())


def _backward(
    adversarial: torch.Tensor,
    extra: torch.Tensor | None,
    params: list[torch.nn.Parameter],
    measure: bool,
) -> torch.Tensor | None:
    """Gradients of adversarial + extra into ``p.grad``; when ``measure`` (and the extra
    term depends on ``params``), by two ``autograd.grad`` calls so that
    ‖∇ extra‖ / ‖∇ adversarial‖ can be returned (a 0-d tensor, no device sync)."""
    if extra is None:
        adversarial.backward(inputs=params)
        return None
    if not (measure and extra.requires_grad):
        (adversarial + extra).backward(inputs=params)
        return None
    g_adv = torch.autograd.grad(adversarial, params, retain_graph=True, allow_unused=True)
    g_extra = torch.autograd.grad(extra, params, allow_unused=True)
    for p, a, e in zip(params, g_adv, g_extra, strict=True):
        if a is None and e is None:
            continue
        total = a if e is None else e if a is None else a + e
        p.grad = total if p.grad is None else p.grad + total
    return _norm(list(g_extra)) / _norm(list(g_adv)).clamp_min(1e-30)


class TrainLog:
    """``train_log.csv``: one row per ``check_every`` steps (the trainer's own columns
    first, then whatever terms the method logs with :meth:`TrainContext.log`), rewritten
    whole and atomically (temp file + rename) at each row, so a crash leaves the rows so
    far readable. A new log replaces any previous one (a rerun starts it fresh)."""

    FIXED = (
        "step",
        "phase",
        "g_steps",
        "d_steps",
        "loss_g",
        "loss_d",
        "d_real",
        "d_fake",
        "r1",
        "reg_g",
        "reg_d",
        "lr_g",
        "lr_d",
    )

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []
        self.columns = list(self.FIXED)
        if path is not None:
            path.unlink(missing_ok=True)

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.columns += [k for k in row if k not in self.columns]
        if self.path is None:
            return
        from gtbench.files.atomic import atomic_write_text

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        for item in self.rows:
            writer.writerow({k: _cell(v) for k, v in item.items()})
        atomic_write_text(self.path, buffer.getvalue())


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


class _Window:
    """Detached per-step values accumulated between two log rows (no device sync)."""

    def __init__(self) -> None:
        self.sums: dict[str, Any] = {}
        self.counts: dict[str, int] = {}

    def add(self, name: str, value: Any) -> None:
        if isinstance(value, torch.Tensor):
            value = value.detach().float()
        self.sums[name] = self.sums[name] + value if name in self.sums else value
        self.counts[name] = self.counts.get(name, 0) + 1

    def means(self) -> dict[str, float]:
        return {k: float(v) / self.counts[k] for k, v in self.sums.items()}


def train(ctx: TrainContext, method: Method) -> None:
    """Adapt ``ctx.generator`` for ``ctx.config.iters`` steps with ``method``'s hooks.

    Runs the D-only warm-up and the method's phases inside that one budget, counting the
    optimiser steps on ``ctx``; leaves the adapted EMA generator in ``ctx.g_ema``. Runs
    once per context. Raises :class:`DivergedError` on a NaN or infinite loss."""
    if ctx._trained:
        raise RuntimeError(
            "train() runs once per context: a method's extra stages (probing, mining) are "
            "phases (Method.phases), inside the same counted budget"
        )
    ctx._trained = True
    _refuse_removed_hooks(method)
    ctx.g_optimizer = ctx.d_optimizer = None
    config = ctx.config
    clock = _Stopwatch(ctx)
    ctx.generator = method.prepare_generator(ctx.generator).to(ctx.device)
    method.setup(ctx)
    clock.add("setup")
    if ctx.discriminator is None:
        raise ValueError("the shared trainer needs a discriminator")
    phases = resolve_phases(ctx, method)
    planned_g = sum(p.steps or 0 for p in phases if p.trains_generator)
    planned_d = sum(p.steps or 0 for p in phases)
    # regulariser strength: the record's value over the last 10 % of each network's
    # updates; the train log's on the first update of every row and those
    measure_g_from = planned_g - max(1, math.ceil(0.1 * planned_g))
    measure_d_from = planned_d - max(1, math.ceil(0.1 * planned_d))
    ctx.g_ema = _frozen(ctx.generator)
    ema_start = 0  # g_steps when the EMA (re)started
    rampup = not ctx.from_pretrained
    ratios: dict[str, list[torch.Tensor]] = {"reg_grad_ratio": [], "reg_grad_ratio_d": []}
    log = TrainLog(ctx.log_path)
    window = _Window()
    ctx._logged = {}
    pending: dict[str, torch.Tensor] = {}
    batch = config.batch_size
    index = 0

    def note_ratio(step: TrainStep, name: str, ratio: torch.Tensor | None, kept: bool) -> None:
        """An update's measured regulariser strength: on the step, in the log's window and,
        over the last 10 % of that network's updates (``kept``), in the record's mean."""
        if ratio is None:
            return
        step.reg_grad_ratio = ratio
        window.add(name, ratio)
        if kept:
            ratios[name].append(ratio)

    for phase in phases:
        ctx.phase, ctx.phase_step = phase, 0
        clock.restart()
        method.on_phase_start(ctx, phase)
        hooks = clock.elapsed()
        if ctx.d_optimizer is None or ctx.g_optimizer is None or phase.new_optimizers:
            ctx.g_optimizer = _optimizer(ctx, method, "g", config.lr_g)
            ctx.d_optimizer = _optimizer(ctx, method, "d", config.lr_d)
        if phase.reset_ema and ctx.g_steps > 0:
            ctx.g_ema, ema_start = _frozen(ctx.generator), ctx.g_steps
        generator, discriminator = ctx.generator, ctx.discriminator
        generator.train()
        discriminator.train()
        for phase_step in range(phase.steps or 0):
            ctx.step, ctx.phase_step = index, phase_step
            # ---- discriminator update
            z = method.sample_latent(ctx, batch)
            with torch.no_grad():
                fake = generator(z)
            real = ctx.sample_real(batch)
            d_real, d_real_features = discriminator.forward_features(method.augment(ctx, real))
            d_fake, d_fake_features = discriminator.forward_features(method.augment(ctx, fake))
            # per-element logits for the loss (a patch map, if the method says so) and one
            # logit per image for the step record and the methods' statistics
            d_real_map = method.discriminator_logits(ctx, d_real, d_real_features)
            d_fake_map = method.discriminator_logits(ctx, d_fake, d_fake_features)
            d_real, d_fake = _logits(d_real_map), _logits(d_fake_map)
            step = TrainStep(
                index, "d", z, fake, d_fake, d_fake_features, [], real, d_real,
                d_real_features, phase_name=phase.name,
            )  # fmt: skip
            loss_d = F.softplus(d_fake_map).mean() + F.softplus(-d_real_map).mean()
            extra_d = method.discriminator_loss(ctx, step)
            d_params = _trained(ctx.d_optimizer, discriminator)
            if ctx.d_optimizer is not None:
                ctx.d_optimizer.zero_grad(set_to_none=True)
            d_moved = g_moved = False
            if d_params:
                first_of_row = index % config.check_every == 0
                recorded = ctx.d_steps >= measure_d_from
                ratio = _backward(loss_d, extra_d, d_params, recorded or first_of_row)
                note_ratio(step, "reg_grad_ratio_d", ratio, recorded)
                if config.r1_gamma > 0 and index % config.r1_every == 0:
                    r1 = _r1_penalty(ctx, method, real)
                    (r1 * (config.r1_gamma / 2 * config.r1_every)).backward(inputs=d_params)
                    window.add("r1", r1)
                d_moved = _optimizer_step(ctx, ctx.d_optimizer, step)
            ctx.d_steps += int(d_moved)
            ctx.images_seen += batch
            method.after_step(ctx, step)
            window.add("loss_d", loss_d)
            window.add("d_real", d_real.mean())
            window.add("d_fake", d_fake.mean())
            pending = {"loss_d": loss_d.detach()}
            if extra_d is not None:
                window.add("reg_d", extra_d)
                pending["reg_d"] = extra_d.detach()
            # ---- generator update
            if phase.trains_generator:
                z = method.sample_latent(ctx, batch)
                fake, g_features = generator.forward_features(z)
                d_out, d_features = discriminator.forward_features(method.augment(ctx, fake))
                d_out_map = method.discriminator_logits(ctx, d_out, d_features)
                step = TrainStep(
                    index, "g", z, fake, _logits(d_out_map), d_features, g_features,
                    phase_name=phase.name,
                )  # fmt: skip
                loss_g = F.softplus(-d_out_map).mean()
                extra_g = method.generator_loss(ctx, step)
                g_params = _trained(ctx.g_optimizer, generator)
                if ctx.g_optimizer is not None:
                    ctx.g_optimizer.zero_grad(set_to_none=True)
                if g_params:
                    recorded = ctx.g_steps >= measure_g_from
                    first_of_row = index % config.check_every == 0
                    ratio = _backward(loss_g, extra_g, g_params, recorded or first_of_row)
                    note_ratio(step, "reg_grad_ratio", ratio, recorded)
                    g_moved = _optimizer_step(ctx, ctx.g_optimizer, step)
                ctx.g_steps += int(g_moved)
                beta = ema_beta(config, (ctx.g_steps - ema_start) * batch, rampup)
                update_ema(ctx.g_ema, generator, beta)
                method.after_step(ctx, step)
                window.add("loss_g", loss_g)
                pending["loss_g"] = loss_g.detach()
                if extra_g is not None:
                    window.add("reg_g", extra_g)
                    pending["reg_g"] = extra_g.detach()
            ctx.warmup_steps += int(d_moved and not g_moved)  # D-only: warm-up or G frozen
            index += 1
            if index % config.check_every == 0 or index == config.iters:
                _check_finite(pending, index - 1)
                log.add(_log_row(ctx, index, phase, window))
                window = _Window()
                if ctx.progress is not None:
                    stats = {k: float(v) for k, v in pending.items()}
                    ctx.progress(index, config.iters, stats)
            if index in ctx.curve_steps and ctx.on_curve is not None:
                curve_started = clock.elapsed()
                ctx.on_curve(index, ctx.g_ema)
                clock.exclude(clock.elapsed() - curve_started)
        clock.add(phase.name)
        ctx.seconds["phase_hooks"] = ctx.seconds.get("phase_hooks", 0.0) + hooks
    ctx.phase = None
    for name, values in ratios.items():
        if values:
            ctx.trainer_metrics[name] = float(torch.stack(values).mean())
    if pending:
        ctx.state["final_losses"] = {
            k: float(v) for k, v in pending.items() if math.isfinite(float(v))
        }


class _Stopwatch:
    """Wall seconds of the trainer's parts into ``ctx.seconds`` (a device sync at each
    reading on CUDA, where work is asynchronous: once per phase, never per step)."""

    def __init__(self, ctx: TrainContext) -> None:
        self.ctx = ctx
        self.cuda = ctx.device.type == "cuda"
        self.restart()

    def _now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize(self.ctx.device)
        return time.perf_counter()

    def restart(self) -> None:
        self.started, self.excluded = self._now(), 0.0

    def elapsed(self) -> float:
        return self._now() - self.started - self.excluded

    def exclude(self, seconds: float) -> None:
        self.excluded += seconds

    def add(self, name: str) -> None:
        """Add the seconds since :meth:`restart` to ``name`` and restart."""
        self.ctx.seconds[name] = self.ctx.seconds.get(name, 0.0) + self.elapsed()
        self.restart()


def _optimizer_step(
    ctx: TrainContext, optimizer: torch.optim.Optimizer | None, step: TrainStep
) -> bool:
    """The registered observers (gradients present), then the optimiser step; whether a
    parameter of the network moved (:func:`_moves`, judged before the step)."""
    for observer in ctx._before_step:
        observer(ctx, step)
    moved = _moves(optimizer)
    if optimizer is not None:
        optimizer.step()
    return moved


# Hooks one built-in method each used, gone from Method (issue 21: every hook serves two
# methods or the trainer); a method that still defines one is refused, never ignored.
REMOVED_HOOKS = {
    "observe": "read step.d_real in after_step, where step.update == 'd'",
    "on_phase_end": "do it in on_phase_start of the next phase, or in extra_metrics",
    "before_optimizer_step": "register an observer in setup: ctx.before_optimizer_step(fn)",
}


def _refuse_removed_hooks(method: Method) -> None:
    for name, instead in REMOVED_HOOKS.items():
        if callable(getattr(method, name, None)):
            raise TypeError(
                f"method {method.name!r} defines {name}(), a hook gtbench no longer calls: "
                f"{instead}"
            )


def _r1_penalty(ctx: TrainContext, method: Method, real: torch.Tensor) -> torch.Tensor:
    """‖∇_x D(augment(x))‖² with respect to the reals x before the method's augmentation,
    through a D pass of its own (a fresh augmentation draw), as StyleGAN2-ADA's and
    DiffAugment's lazy R1 (``run_D`` augments inside the gradient)."""
    assert ctx.discriminator is not None
    real = real.detach().requires_grad_(True)
    output, features = ctx.discriminator.forward_features(method.augment(ctx, real))
    logits = _logits(method.discriminator_logits(ctx, output, features))
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return grad.square().flatten(1).sum(1).mean()


def _log_row(ctx: TrainContext, index: int, phase: Phase, window: _Window) -> dict[str, Any]:
    row: dict[str, Any] = {
        "step": index,
        "phase": phase.name,
        "g_steps": ctx.g_steps,
        "d_steps": ctx.d_steps,
    }
    row.update(window.means())
    for name, optimizer in (("lr_g", ctx.g_optimizer), ("lr_d", ctx.d_optimizer)):
        if optimizer is not None:
            row[name] = float(optimizer.param_groups[0]["lr"])
    for name, values in ctx._logged.items():
        if values:
            row[name] = sum(float(v) for v in values) / len(values)
    ctx._logged = {}
    return row
