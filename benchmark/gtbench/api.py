"""The public plugin API of gtbench: everything a source, method, dataset, extractor or
launcher plugin needs, in one module.

A plugin subclasses one of the five base classes below and is registered under the
matching entry-point group (``gtbench.sources``, ``gtbench.methods``, ``gtbench.datasets``,
``gtbench.extractors``, ``gtbench.launchers``). Plugins take parameters through the
``name:key=value,key=value`` syntax (see :mod:`gtbench.spec`); the parameters arrive as
keyword arguments of ``__init__`` after being checked against ``parameters``.

Networks are exposed as ordered, named blocks (:class:`BlockNetwork`) so that a method
can say "freeze the first k discriminator blocks" or "read the features of generator
block k" once, for every architecture.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    from gtbench.assets import Asset
    from gtbench.trainer import TrainContext, TrainStep

__all__ = [
    "BlockNetwork",
    "Dataset",
    "Discriminator",
    "Generator",
    "DatasetInfo",
    "Extractor",
    "FewShotSplit",
    "Launcher",
    "LaunchRequest",
    "Method",
    "Parameter",
    "Plugin",
    "Source",
    "register_fidelity_extractor",
    "SourceInfo",
    "SourceNetworks",
]


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Parameter:
    """One plugin parameter: its default, type and meaning (shown by ``gtbench list``)."""

    default: Any
    help: str = ""
    type: Callable[[str], Any] | None = None  # parser for CLI strings; inferred if None

    def parse(self, value: Any) -> Any:
        """Turn a CLI/suite value into the parameter's type."""
        if not isinstance(value, str):
            return value
        parser = self.type or _infer_parser(self.default)
        return parser(value)


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true/false, got {text!r}")


def _infer_parser(default: Any) -> Callable[[str], Any]:
    if isinstance(default, bool):
        return _parse_bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    return str


class Plugin:
    """Common base: a name, a description and typed parameters.

    ``parameters`` maps each accepted keyword to a :class:`Parameter`; values given by the
    user are parsed and checked, unknown keywords are an error, and the resolved values
    (defaults filled in) are available as ``self.params`` and become part of a cell's
    identity.
    """

    kind: ClassVar[str] = "plugin"
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    parameters: ClassVar[Mapping[str, Parameter]] = {}
    # Parameters that make a small, quick, working instance (no user files needed): used
    # by the registry-wide tests, so a new plugin is tested without writing a test.
    example_params: ClassVar[Mapping[str, Any]] = {}
    # files (weights, data) the plugin downloads; `gtbench fetch NAME` pre-fetches them
    assets: ClassVar[tuple[Asset, ...]] = ()

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = self.resolve_params(params)

    @classmethod
    def resolve_params(cls, given: Mapping[str, Any]) -> dict[str, Any]:
        """Fill defaults and parse values; raise ``ValueError`` naming an unknown key."""
        unknown = sorted(set(given) - set(cls.parameters))
        if unknown:
            accepted = ", ".join(sorted(cls.parameters)) or "none"
            raise ValueError(
                f"{cls.kind} {cls.name!r} has no parameter {unknown[0]!r} (accepted: {accepted})"
            )
        resolved = {}
        for key, parameter in cls.parameters.items():
            if key in given:
                try:
                    resolved[key] = parameter.parse(given[key])
                except (TypeError, ValueError) as error:
                    raise ValueError(
                        f"{cls.kind} {cls.name!r}: bad value for {key!r}: {error}"
                    ) from None
            else:
                resolved[key] = parameter.default
        return resolved


# --------------------------------------------------------------------------- networks


class BlockNetwork(nn.Module):
    """A generator or discriminator seen as an ordered sequence of named blocks.

    Order follows the data flow: for a generator from the latent to the image (low to
    high resolution), for a discriminator from the image to the logit (high to low
    resolution). So "the first k discriminator blocks" are FreezeD's high-resolution
    blocks on every architecture.

    The default ``forward_features`` runs the blocks in sequence; architectures that are
    not a plain chain (StyleGAN2's per-block styles and skips) override it, still
    returning one feature tensor per block, in block order.
    """

    def __init__(self, blocks: Mapping[str, nn.Module] | None = None) -> None:
        super().__init__()
        self.blocks = nn.ModuleDict(blocks or {})

    def named_blocks(self) -> list[tuple[str, nn.Module]]:
        """The blocks in data-flow order."""
        return list(self.blocks.items())

    def block_names(self) -> list[str]:
        return list(self.blocks.keys())

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run the network; return its output and each block's output in block order."""
        features = []
        for block in self.blocks.values():
            x = block(x)
            features.append(x)
        return x, features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]


class Generator(BlockNetwork):
    """A generator: latent in, image in [-1, 1] (N×C×H×W) out."""

    latent_shape: tuple[int, ...] = ()

    def sample_latent(
        self, n: int, *, generator: torch.Generator | None = None, device: Any = None
    ) -> torch.Tensor:
        """Draw ``n`` latents from the prior (standard normal by default)."""
        device = device if device is not None else _module_device(self)
        return torch.randn((n, *self.latent_shape), generator=generator, device="cpu").to(device)


class Discriminator(BlockNetwork):
    """A discriminator: image in, one logit per image (shape N or N×1) out."""


def _module_device(module: nn.Module) -> torch.device:
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class SourceInfo:
    """What a method or the runner may ask of a source without building it."""

    resolution: int
    channels: int
    latent_shape: tuple[int, ...]
    has_discriminator: bool
    architecture: str = ""  # e.g. "dcgan", "stylegan2": lets methods declare compatibility
    trained_on: str = ""  # a word on the source domain, for the leaderboard


@dataclass
class SourceNetworks:
    """The networks a source hands to the trainer."""

    generator: Generator
    discriminator: Discriminator | None


class Source(Plugin, ABC):
    """A pretrained generator, and its discriminator when it has one."""

    kind: ClassVar[str] = "source"

    @property
    @abstractmethod
    def info(self) -> SourceInfo: ...

    @abstractmethod
    def load(self, *, pretrained: bool = True) -> SourceNetworks:
        """Build the networks; with ``pretrained=False`` the same architecture, freshly
        initialised (the ``scratch`` baseline and fresh discriminators use this)."""

    def new_discriminator(self) -> Discriminator:
        """A freshly initialised discriminator for sources that ship none.

        The default raises; a G-only source overrides it to say which D architecture it
        pairs with (documented in the plugin)."""
        raise NotImplementedError(f"source {self.name!r} ships no discriminator")


# --------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class DatasetInfo:
    resolution: int
    channels: int
    size: int  # number of images available
    shot_pool: int  # shots are drawn only from the first `shot_pool` of a fixed permutation
    domain: str = ""


@dataclass(frozen=True)
class FewShotSplit:
    """Indices into :meth:`Dataset.images` of the K training shots.

    The evaluation set never depends on (shots, seed): it is every image outside the shot
    pool (or a separate set the dataset provides), so it is disjoint from every training
    subset and its reference statistics are shared by all cells.
    """

    train: tuple[int, ...]


class Dataset(Plugin, ABC):
    """A target: a fixed set of images with a deterministic K-shot protocol."""

    kind: ClassVar[str] = "dataset"

    @property
    @abstractmethod
    def info(self) -> DatasetInfo: ...

    @abstractmethod
    def images(self) -> torch.Tensor:
        """All images as uint8, N×C×H×W at ``info.resolution`` (cached by the plugin)."""

    def shot_pool(self) -> list[int]:
        """Indices shots may be drawn from: the first ``shot_pool`` of a fixed permutation."""
        rng = torch.Generator().manual_seed(0)
        order = torch.randperm(self.info.size, generator=rng).tolist()
        return order[: self.info.shot_pool]

    def evaluation_images(self) -> torch.Tensor:
        """The evaluation set as uint8 N×C×H×W: every image outside the shot pool.

        A dataset with a separate evaluation folder overrides this."""
        pool = set(self.shot_pool())
        keep = [i for i in range(self.info.size) if i not in pool]
        return self.images()[keep]

    def split(self, shots: int, seed: int) -> FewShotSplit:
        """The K training shots for (shots, seed): a seeded draw from the shot pool."""
        if shots < 1:
            raise ValueError(f"shots must be at least 1, got {shots}")
        pool = self.shot_pool()
        if shots > len(pool):
            raise ValueError(
                f"dataset {self.name!r} has {self.info.size} images and a shot pool of "
                f"{len(pool)}; cannot draw {shots} shots"
            )
        rng = torch.Generator().manual_seed(1_000_003 * seed + shots)
        order = torch.randperm(len(pool), generator=rng).tolist()
        return FewShotSplit(train=tuple(sorted(pool[i] for i in order[:shots])))

    def content_hash(self) -> str:
        """sha256 of the image bytes, shape included: the reference-statistics cache key."""
        import hashlib

        data = self.images().contiguous()
        digest = hashlib.sha256(str(tuple(data.shape)).encode())
        digest.update(data.numpy().tobytes())
        return digest.hexdigest()


# --------------------------------------------------------------------------- extractors


class Extractor(Plugin, ABC):
    """A feature extractor for FID/KID, backed by torch-fidelity's extractor registry."""

    kind: ClassVar[str] = "extractor"

    @abstractmethod
    def fidelity_name(self) -> str:
        """Register with torch-fidelity if needed and return its extractor name."""

    @abstractmethod
    def feature_layer(self) -> str:
        """The layer name whose features FID/KID use."""

    def fidelity_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for the torch-fidelity extractor (weights path, ...)."""
        return {}

    def check_available(self) -> None:
        """Raise ``gtbench.errors.MissingAssetError`` saying how to provide missing weights.

        Called before any training starts, so a sweep never trains for an hour and then
        fails to evaluate."""

    def identity(self) -> str:
        """What distinguishes its features (name + weights): part of the stats cache key."""
        return f"{self.name}:{sorted(self.params.items())}"


def register_fidelity_extractor(name: str, network: type) -> str:
    """Register a torch-fidelity ``FeatureExtractorBase`` subclass once per process under
    ``name`` and return the name (what :meth:`Extractor.fidelity_name` returns)."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    if name not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(name, network)
    return name


# --------------------------------------------------------------------------- methods


class Method(Plugin, ABC):
    """A transfer method: the part that differs from plain fine-tuning.

    The shared trainer (:mod:`gtbench.trainer`) calls the hooks below; the defaults are
    plain fine-tuning of every generator and discriminator parameter. A method that cannot
    be written as hooks overrides :meth:`fit` and runs its own loop.

    ``parameters`` holds the method's hyper-parameters with the paper's defaults;
    ``paper`` and ``code`` say where they come from.
    """

    kind: ClassVar[str] = "method"
    paper: ClassVar[str] = ""
    code: ClassVar[str] = ""
    requires_discriminator: ClassVar[bool] = False  # needs a *pretrained* D
    architectures: ClassVar[tuple[str, ...]] = ()  # empty: any architecture
    start_from_pretrained: ClassVar[bool] = True  # False: random init (scratch baseline)

    def incompatibility(self, source: SourceInfo) -> str | None:
        """Why this method cannot run on ``source``, or None when it can."""
        if self.requires_discriminator and not source.has_discriminator:
            return f"{self.name} needs a pretrained discriminator; source has none"
        if self.architectures and source.architecture not in self.architectures:
            return f"{self.name} supports {', '.join(self.architectures)} sources only"
        return None

    def trains(self) -> bool:
        """False for methods that evaluate the starting generator as it is."""
        return True

    def prepare_generator(self, generator: Generator) -> Generator:
        """Change the generator's *structure* (wrap convs, put a miner in front), nothing else.

        Called before :meth:`setup`, and again when a kept generator is rebuilt from its
        saved weights (``gtbench generate``): it must depend only on the method's
        parameters, never on data, so the saved state dict loads into its result."""
        return generator

    def setup(self, ctx: TrainContext) -> None:
        """Prepare before training: freeze, wrap modules, estimate Fisher information...

        May replace ``ctx.generator`` (e.g. wrap it) as long as the replacement is still
        a :class:`Generator`; optimisers and EMA are built after this returns."""

    def augment(self, ctx: TrainContext, images: torch.Tensor) -> torch.Tensor:
        """Augment images at D's input (applied to real and fake alike)."""
        return ctx.augment(images)

    def sample_latent(self, ctx: TrainContext, n: int) -> torch.Tensor:
        """Latents for a training step."""
        return ctx.generator.sample_latent(n, generator=ctx.rng, device=ctx.device)

    def discriminator_logits(
        self, ctx: TrainContext, output: torch.Tensor, features: list[torch.Tensor]
    ) -> torch.Tensor:
        """The logits the adversarial loss sees for one D pass (real or fake, either phase).

        Default: D's output, one logit per image (any spatial map averaged). A method may
        return N×… logits instead, e.g. a patch map from its own head on an intermediate
        feature (CDC's patch-level loss): every element is then one term of the logistic
        loss, while R1 and :class:`TrainStep` still get one logit per image (the mean)."""
        return output.reshape(output.shape[0], -1).mean(dim=1)

    def generator_loss(self, ctx: TrainContext, step: TrainStep) -> torch.Tensor | None:
        """An extra term added to the generator's loss at this step."""
        return None

    def discriminator_loss(self, ctx: TrainContext, step: TrainStep) -> torch.Tensor | None:
        """An extra term added to the discriminator's loss at this step."""
        return None

    def after_step(self, ctx: TrainContext, step: TrainStep) -> None:
        """Per-step callback after both updates (adaptive p, stage switches, pruning)."""

    def extra_metrics(self, ctx: TrainContext) -> dict[str, float]:
        """Values to store in the record (final ADA p, number of frozen filters, ...)."""
        return {}

    def fit(self, ctx: TrainContext) -> None:
        """Adapt ``ctx.generator``; by default the shared trainer with these hooks."""
        from gtbench.trainer import train

        train(ctx, self)


# --------------------------------------------------------------------------- launchers


@dataclass(frozen=True)
class LaunchRequest:
    """What a launcher is asked to run: cells (JSON-able dicts) and where results go."""

    cells: Sequence[Mapping[str, Any]]
    results_dir: str
    workers: int = 1
    options: Mapping[str, Any] = field(default_factory=dict)
    # In-process launchers may report a cell's progress: (run_id, stage, done, total).
    progress: Callable[[str, str, int, int], None] | None = None


class Launcher(Plugin, ABC):
    """Runs cells somewhere. Results are read back from run folders, never from return
    values, so a lost or failed job never hides the others."""

    kind: ClassVar[str] = "launcher"
    # True when jobs outlive this process, so `gtbench run --no-wait` may return right
    # after submitting (``request.options["wait"]`` is then False).
    can_detach: ClassVar[bool] = False

    @abstractmethod
    def launch(self, request: LaunchRequest, on_done: Callable[[str], None]) -> None:
        """Run every cell of ``request`` with :func:`gtbench.runner.run_cell`.

        ``on_done(run_id)`` is called in this process as each cell finishes (for the
        progress bar); it must be called for every cell, failed ones included."""
