"""The one GAN fine-tuning loop every method shares.

Non-saturating logistic loss, lazy R1 penalty on real images, Adam, an exponential
moving average of the generator (used for evaluation) with StyleGAN2-ADA's ramp-up, and
optional differentiable augmentation. Methods change it only through the hooks of
:class:`gtbench.method.Method`. All randomness flows from ``ctx.rng`` (a CPU generator), so
a run is deterministic on CPU for a fixed seed.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from gtbench.augment import DiffAugmentPipeline
from gtbench.errors import DivergedError
from gtbench.networks import Discriminator, Generator

if TYPE_CHECKING:
    from gtbench.method import Method

# Part of every run_id: bump whenever a change to the trainer can change a number.
TRAINER_VERSION = "1"


@dataclass(frozen=True)
class TrainConfig:
    """The trainer's hyper-parameters (all part of a cell's identity)."""

    iters: int = 300
    batch_size: int = 16
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.0
    beta2: float = 0.99
    r1_gamma: float = 1.0
    r1_every: int = 4
    ema_kimg: float = 2.0
    ema_rampup: float = 0.05
    augment: str = ""  # DiffAugment policy applied at D's input, e.g. "color,translation"
    d_warmup: int = 0  # first steps train D only (a fresh D's early gradients are noise)
    check_every: int = 10  # how often losses are checked for NaN/inf (a device sync)

    @classmethod
    def fields(cls) -> list[str]:
        return list(cls.__dataclass_fields__)


@dataclass
class TrainStep:
    """What one training step computed, handed to the method's loss hooks.

    In the discriminator phase ``fake`` is detached; in the generator phase ``real`` and
    ``d_real`` are None. Features are per block, in block order."""

    index: int
    phase: str  # "d" or "g"
    z: torch.Tensor
    fake: torch.Tensor
    d_fake: torch.Tensor
    d_fake_features: list[torch.Tensor]
    g_features: list[torch.Tensor] = field(default_factory=list)
    real: torch.Tensor | None = None
    d_real: torch.Tensor | None = None
    d_real_features: list[torch.Tensor] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainContext:
    """Everything a method may read or change while adapting a generator."""

    generator: Generator
    discriminator: Discriminator | None
    real: torch.Tensor  # the K shots, float in [-1, 1], on ``device``
    config: TrainConfig
    device: torch.device
    rng: torch.Generator
    augment: Callable[[torch.Tensor], torch.Tensor] = lambda x: x
    g_ema: Generator | None = None
    step: int = 0
    state: dict[str, Any] = field(default_factory=dict)  # a method's own bookkeeping
    progress: Callable[[int, int, dict[str, float]], None] | None = None
    _source_generator: Generator | None = None
    _source_discriminator: Discriminator | None = None
    g_optimizer: torch.optim.Optimizer | None = None
    d_optimizer: torch.optim.Optimizer | None = None

    def __post_init__(self) -> None:
        # Frozen copies of the starting networks are taken now, before any method
        # changes them, but only materialised if a method asks (memory on big models).
        self._initial_g_state = copy.deepcopy(self.generator)
        self._initial_d_state = (
            copy.deepcopy(self.discriminator) if self.discriminator is not None else None
        )

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

    def sample_real(self, n: int) -> torch.Tensor:
        """A batch of ``n`` shots drawn with replacement."""
        index = torch.randint(len(self.real), (n,), generator=self.rng)
        return self.real[index.to(self.real.device)]


def _frozen(module: torch.nn.Module) -> Any:
    module = copy.deepcopy(module)
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def _logits(output: torch.Tensor) -> torch.Tensor:
    return output.reshape(output.shape[0], -1).mean(dim=1)


def ema_beta(config: TrainConfig, images_seen: int) -> float:
    """StyleGAN2-ADA's EMA decay: half-life ``ema_kimg`` thousand images, ramped up."""
    ema_images = config.ema_kimg * 1000
    if config.ema_rampup > 0:
        ema_images = min(ema_images, images_seen * config.ema_rampup)
    return 0.5 ** (config.batch_size / max(ema_images, 1e-8))


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    """ema ← model + β (ema − model) for parameters; buffers are copied."""
    for p_ema, p in zip(ema.parameters(), model.parameters(), strict=True):
        p_ema.lerp_(p.detach(), 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), model.buffers(), strict=True):
        b_ema.copy_(b)


def build_context(
    generator: Generator,
    discriminator: Discriminator | None,
    real: torch.Tensor,
    config: TrainConfig,
    seed: int,
    device: torch.device,
) -> TrainContext:
    """A context with a seeded CPU generator and the configured augmentation."""
    rng = torch.Generator().manual_seed(seed)
    augment = DiffAugmentPipeline(config.augment, rng)
    ctx = TrainContext(
        generator=generator.to(device),
        discriminator=discriminator.to(device) if discriminator is not None else None,
        real=real.to(device),
        config=config,
        device=device,
        rng=rng,
        augment=augment if augment else (lambda x: x),
    )
    return ctx


def _optimizer(module: torch.nn.Module, lr: float, config: TrainConfig) -> torch.optim.Adam:
    params = list(module.parameters())
    return torch.optim.Adam(params, lr=lr, betas=(config.beta1, config.beta2))


def _check_finite(values: dict[str, torch.Tensor], step: int) -> None:
    for name, value in values.items():
        if not bool(torch.isfinite(value).all()):
            raise DivergedError(f"{name} became {value.item()} at step {step}")


def train(ctx: TrainContext, method: Method) -> None:
    """Adapt ``ctx.generator`` for ``ctx.config.iters`` steps with ``method``'s hooks.

    Leaves the adapted EMA generator in ``ctx.g_ema``. Raises :class:`DivergedError` on a
    NaN or infinite loss."""
    config = ctx.config
    ctx.generator = method.prepare_generator(ctx.generator).to(ctx.device)
    method.setup(ctx)
    generator, discriminator = ctx.generator, ctx.discriminator
    if discriminator is None:
        raise ValueError("the shared trainer needs a discriminator")
    ctx.g_ema = _frozen(generator)
    ctx.g_optimizer = _optimizer(generator, config.lr_g, config)
    ctx.d_optimizer = _optimizer(discriminator, config.lr_d, config)
    generator.train()
    discriminator.train()
    pending: dict[str, torch.Tensor] = {}
    batch = config.batch_size
    for index in range(config.iters):
        ctx.step = index
        # ---- discriminator update
        g_params = [p for p in generator.parameters() if p.requires_grad]
        d_params = [p for p in discriminator.parameters() if p.requires_grad]
        z = method.sample_latent(ctx, batch)
        with torch.no_grad():
            fake = generator(z)
        real = ctx.sample_real(batch)
        r1_step = config.r1_gamma > 0 and index % config.r1_every == 0
        real_in = method.augment(ctx, real.detach().requires_grad_(r1_step))
        d_real, d_real_features = discriminator.forward_features(real_in)
        d_fake, d_fake_features = discriminator.forward_features(method.augment(ctx, fake))
        # per-element logits for the loss (a patch map, if the method says so) and one
        # logit per image for the step record, R1 and the methods' statistics
        d_real_map = method.discriminator_logits(ctx, d_real, d_real_features)
        d_fake_map = method.discriminator_logits(ctx, d_fake, d_fake_features)
        d_real, d_fake = _logits(d_real_map), _logits(d_fake_map)
        step = TrainStep(
            index, "d", z, fake, d_fake, d_fake_features, [], real, d_real, d_real_features
        )
        loss_d = F.softplus(d_fake_map).mean() + F.softplus(-d_real_map).mean()
        extra_d = method.discriminator_loss(ctx, step)
        if extra_d is not None:
            loss_d = loss_d + extra_d
        if r1_step:
            (grad,) = torch.autograd.grad(d_real.sum(), real_in, create_graph=True)
            r1 = grad.square().flatten(1).sum(1).mean()
            loss_d = loss_d + r1 * (config.r1_gamma / 2 * config.r1_every)
        ctx.d_optimizer.zero_grad(set_to_none=True)
        if d_params:
            loss_d.backward(inputs=d_params)
            ctx.d_optimizer.step()
        # ---- generator update
        z = method.sample_latent(ctx, batch)
        fake, g_features = generator.forward_features(z)
        d_out, d_features = discriminator.forward_features(method.augment(ctx, fake))
        d_out_map = method.discriminator_logits(ctx, d_out, d_features)
        d_out = _logits(d_out_map)
        step = TrainStep(index, "g", z, fake, d_out, d_features, g_features)
        loss_g = F.softplus(-d_out_map).mean()
        extra_g = method.generator_loss(ctx, step)
        if extra_g is not None:
            loss_g = loss_g + extra_g
        ctx.g_optimizer.zero_grad(set_to_none=True)
        if g_params and index >= config.d_warmup:
            loss_g.backward(inputs=g_params)
            ctx.g_optimizer.step()
        update_ema(ctx.g_ema, generator, ema_beta(config, (index + 1) * batch))
        method.after_step(ctx, step)
        pending = {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}
        last = index == config.iters - 1
        if (index + 1) % config.check_every == 0 or last:
            _check_finite(pending, index)
            if ctx.progress is not None:
                stats = {k: float(v) for k, v in pending.items()}
                ctx.progress(index + 1, config.iters, stats)
    if pending:
        ctx.state["final_losses"] = {
            k: float(v) for k, v in pending.items() if math.isfinite(float(v))
        }
