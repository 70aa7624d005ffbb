"""The plugin base classes: parameters, sources, datasets, extractors and launchers.

A plugin subclasses one of these bases (or :class:`gtbench.train.method.Method`) and is
registered under the matching entry-point group (``gtbench.sources``, ``gtbench.methods``,
``gtbench.datasets``, ``gtbench.extractors``, ``gtbench.launchers``). Plugins take
parameters through the ``name:key=value,key=value`` syntax (see :mod:`gtbench.plugin.spec`); the
parameters arrive as keyword arguments of ``__init__`` after being checked against
``parameters``. Authors import all of this from :mod:`gtbench.api`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from gtbench.plugin.networks import Discriminator, Generator
from gtbench.plugin.search import Distribution
from gtbench.plugin.spec import coerce

if TYPE_CHECKING:
    from gtbench.files.assets import Asset

__all__ = [
    "ALLOW_OVERLAP",
    "Dataset",
    "DatasetInfo",
    "Extractor",
    "FewShotSplit",
    "Launcher",
    "LaunchRequest",
    "Parameter",
    "Plugin",
    "Source",
    "SourceInfo",
    "SourceNetworks",
    "register_fidelity_extractor",
]


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Parameter:
    """One plugin parameter: its default, type and meaning (shown by ``gtbench list``)."""

    default: Any
    help: str = ""
    type: Callable[[str], Any] | None = None  # parser for CLI strings; inferred if None
    # where `gtbench tune` draws this parameter's trials from (None: never tuned)
    search: Distribution | None = None

    def parse(self, value: Any) -> Any:
        """Turn a CLI/suite value into the parameter's type, normalised (``2.0`` → ``2``
        for an int default, strict ``true``/``false`` for a bool; see
        :func:`gtbench.plugin.spec.coerce`); ``type``, when given, parses strings instead."""
        if self.type is not None and isinstance(value, str):
            return self.type(value)
        return coerce(value, self.default)


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
    # Bump whenever a change to the plugin can change a number it produces: the version is
    # part of every run_id, so records made by an older version are stale, never "done".
    version: ClassVar[str] = "1"

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


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class SourceInfo:
    """What a method or the runner may ask of a source without building it."""

    resolution: int
    channels: int
    latent_shape: tuple[int, ...]
    has_discriminator: bool
    architecture: str = ""  # e.g. "dcgan", "stylegan2": lets methods declare compatibility


@dataclass
class SourceNetworks:
    """The networks a source hands to the trainer."""

    generator: Generator
    discriminator: Discriminator | None
    # what the loader computed or assumed that results depend on (e.g. a mean latent it
    # estimated because the checkpoint has none): recorded as `source_notes`
    notes: dict[str, str] = field(default_factory=dict)


class Source(Plugin, ABC):
    """A pretrained generator, and its discriminator when it has one."""

    kind: ClassVar[str] = "source"
    # The registered dataset of the images the source was pretrained on (its domain), the
    # source side of the adaptation measure's classifier. None: samples of the pretrained
    # generator stand in, which also separates real from generated (docs/protocol.md).
    domain_dataset: ClassVar[str | None] = None

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
    # images after the shot pool in that permutation held out for tuning (0: no
    # validation split, so `gtbench tune` refuses the dataset)
    validation: int = 0


@dataclass(frozen=True)
class FewShotSplit:
    """Indices into :meth:`Dataset.images` of the K training shots.

    The evaluation set never depends on (shots, seed): it is every image outside the shot
    pool (or a separate set the dataset provides), so it is disjoint from every training
    subset and its reference statistics are shared by all cells.
    """

    train: tuple[int, ...]


# The opt-in a dataset declares (as ``"allow_overlap": ALLOW_OVERLAP`` in its
# ``parameters``) so its user may accept shots that are also evaluation images.
ALLOW_OVERLAP = Parameter(
    False, "accept shots that are also evaluation images (same content); counted in records"
)


class Dataset(Plugin, ABC):
    """A target: a fixed set of images with a deterministic K-shot protocol.

    Shots and evaluation images are compared by content (sha256 of each image's uint8
    bytes), not by index: the built-in evaluation set leaves out copies of shot-pool
    images, and :meth:`shot_eval_overlap` counts what a dataset's own evaluation set
    (a separate folder, say) still shares with a split. The runner refuses a non-zero
    count unless the dataset has ``allow_overlap=true``."""

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
        """The evaluation set as uint8 N×C×H×W: every image outside the shot pool and the
        validation split that is not a copy (same bytes) of one of theirs, so no shot of any
        seed, and nothing tuning selected on, is evaluated.

        A dataset with a separate evaluation folder overrides this."""
        from gtbench.plugin.images import image_sha256s

        images = self.images()
        pool = self.shot_pool() + (self.validation_indices() or [])
        pooled = set(image_sha256s(images[pool]))
        in_pool = set(pool)
        hashes = image_sha256s(images)
        keep = [i for i in range(len(images)) if i not in in_pool and hashes[i] not in pooled]
        return images[keep]

    def validation_indices(self) -> list[int] | None:
        """The validation split tuning selects on: the ``info.validation`` images after the
        shot pool in the fixed permutation, less copies (same bytes) of shot-pool images.
        ``evaluation_images`` leaves them (and their copies) out. None when the dataset has
        no validation split."""
        from gtbench.plugin.images import image_sha256s

        info = self.info
        if info.validation <= 0:
            return None
        if info.shot_pool + info.validation >= info.size:
            raise ValueError(
                f"dataset {self.name!r}: shot pool {info.shot_pool} + validation "
                f"{info.validation} leave no evaluation image among {info.size}"
            )
        order = torch.randperm(info.size, generator=torch.Generator().manual_seed(0)).tolist()
        hashes = image_sha256s(self.images())
        pooled = {hashes[i] for i in order[: info.shot_pool]}
        held = order[info.shot_pool : info.shot_pool + info.validation]
        return [i for i in held if hashes[i] not in pooled]

    def validation_images(self) -> torch.Tensor | None:
        """The validation split as uint8 N×C×H×W, or None when the dataset has none."""
        indices = self.validation_indices()
        return None if indices is None else self.images()[indices]

    def shot_eval_overlap(self, split: FewShotSplit) -> int:
        """How many of the split's shots equal an evaluation image byte for byte (recorded
        as ``shot_eval_overlap`` in every record; non-zero is an error unless allowed)."""
        from gtbench.plugin.images import image_sha256s

        evaluation = set(image_sha256s(self.evaluation_images()))
        return sum(h in evaluation for h in image_sha256s(self.images()[list(split.train)]))

    def allows_overlap(self) -> bool:
        """Whether the user opted in to shots that are also evaluation images."""
        return bool(self.params.get("allow_overlap", False))

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

    def split_apart(self, shots: int, seed: int, apart_from: Sequence[int]) -> FewShotSplit:
        """The K shots of a tuning trial: a seeded draw from the shot pool less every image
        (by content) among the shots of the seeds in ``apart_from`` (the evaluation
        seeds), so selection never trains on an evaluated seed's shots. Raises
        ``ValueError`` when too few images are left."""
        from gtbench.plugin.images import image_sha256s

        if shots < 1:
            raise ValueError(f"shots must be at least 1, got {shots}")
        hashes = image_sha256s(self.images())
        taken = {hashes[i] for s in apart_from for i in self.split(shots, s).train}
        pool = [i for i in self.shot_pool() if hashes[i] not in taken]
        if shots > len(pool):
            raise ValueError(
                f"dataset {self.name!r}: the shots of seeds {sorted(set(apart_from))} leave "
                f"{len(pool)} of its shot pool of {self.info.shot_pool}; cannot draw {shots} "
                "trial shots apart from them (a larger pool, or fewer evaluation seeds)"
            )
        rng = torch.Generator().manual_seed(1_000_003 * seed + shots)
        order = torch.randperm(len(pool), generator=rng).tolist()
        return FewShotSplit(train=tuple(sorted(pool[i] for i in order[:shots])))

    def shot_sha256s(self, split: FewShotSplit) -> list[str]:
        """The content hashes (sha256 of the uint8 bytes) of a split's shots, in index order."""
        from gtbench.plugin.images import image_sha256s

        return image_sha256s(self.images()[list(split.train)])

    def content_hash(self) -> str:
        """sha256 of the image bytes, dtype and shape included: the content key of the
        reference-statistics cache and of a cell's identity."""
        from gtbench.plugin.images import tensor_sha256

        return tensor_sha256(self.images())


# --------------------------------------------------------------------------- extractors


class Extractor(Plugin, ABC):
    """A feature extractor for FID/KID, backed by torch-fidelity's extractor registry."""

    kind: ClassVar[str] = "extractor"
    # False for an extractor whose distances mean nothing (the random `debug` network):
    # records say so (`eval.is_metric`) and the command line labels its numbers.
    is_metric: ClassVar[bool] = True

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
        """Run every cell of ``request`` with :func:`gtbench.launch.runner.run_cell`.

        ``on_done(run_id)`` is called in this process as each cell finishes (for the
        progress bar); it must be called for every cell, failed ones included."""
