"""Turning a suite into cells: the cross product, each cell's resolved configuration and
its ``run_id`` (a hash of everything that can change its numbers)."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from gtbench.errors import UsageError
from gtbench.plan.suite import PluginRef, Suite
from gtbench.plugin import registry
from gtbench.plugin.base import Dataset, Plugin, Source
from gtbench.plugin.spec import PluginSpec, parse_spec
from gtbench.train.method import Method

# 2: run_id covers plugin, trainer and protocol versions, the dataset's content and the
# extractor's identity; ``train``/``eval`` settings that cannot change a number are left out.
SCHEMA_VERSION = 2


def _identity_fields(cls: type) -> list[str]:
    """Fields of a settings dataclass that can change a number; a field declared with
    ``metadata={"identity": False}`` cannot (e.g. the evaluation batch size) and is left
    out of ``run_id``."""
    return [f.name for f in dataclasses.fields(cls) if f.metadata.get("identity", True)]


def eval_identity_fields() -> list[str]:
    from gtbench.measure.eval_settings import EvalSettings

    return _identity_fields(EvalSettings)


def plugin_ref(kind: str, ref: PluginRef) -> dict[str, Any]:
    """Resolve a plugin reference to ``{"name", "params", "version"}``: every default
    filled in, and the plugin class's ``version``."""
    spec = parse_spec(ref)
    instance = registry.registry(kind).create(spec)
    return {
        "name": spec.name,
        "params": dict(sorted(instance.params.items())),
        "version": str(type(instance).version),
    }


def make_plugin(kind: str, ref: dict[str, Any]) -> Any:
    """Instantiate a plugin from a resolved reference stored in a cell."""
    return registry.registry(kind).create(PluginSpec(ref["name"], ref["params"]))


def describe(ref: dict[str, Any], kind: str) -> str:
    """``name`` or ``name:key=value`` showing only the parameters that differ from defaults."""
    cls: type[Plugin] = registry.registry(kind).get(ref["name"])
    changed = {
        k: v
        for k, v in ref["params"].items()
        if k in cls.parameters and cls.parameters[k].default != v
    }
    return str(PluginSpec(ref["name"], changed))


def matched_content_hash(content_hash: str, resolution: int, channels: int) -> str:
    """The content hash of a dataset (``content_hash``) seen through :class:`MatchedTarget`
    at ``resolution`` and ``channels``: part of a cell's identity, computed at plan time
    without converting any image."""
    key = f"{content_hash}:{resolution}:{channels}:bicubic-antialias"
    return hashlib.sha256(key.encode()).hexdigest()


_NOT_IDENTITY = ("run_id", "keep_weights", "curve")  # a curve never changes a number


def identity_of(cell: dict[str, Any]) -> dict[str, Any]:
    """What a cell's ``run_id`` hashes: the whole cell except ``run_id``, ``keep_weights``
    and the train/eval settings that cannot change a number."""
    from gtbench.measure.eval_settings import EvalSettings
    from gtbench.train.trainer import TrainConfig

    identity = {k: v for k, v in cell.items() if k not in _NOT_IDENTITY}
    for key, cls in (("train", TrainConfig), ("eval", EvalSettings)):
        if isinstance(identity.get(key), dict):
            dropped = {f.name for f in dataclasses.fields(cls)} - set(_identity_fields(cls))
            identity[key] = {k: v for k, v in identity[key].items() if k not in dropped}
    return identity


def run_id_of(cell: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a cell's identity, shortened to 16 hex digits."""
    canonical = json.dumps(identity_of(cell), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class Skipped:
    """A combination the plan leaves out, with the reason shown to the user."""

    source: str
    method: str
    dataset: str
    reason: str


@dataclass
class Plan:
    cells: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def _check_ints(name: str, values: list[int], minimum: int) -> list[int]:
    checked = []
    for value in values:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise UsageError(f"--{name}: {value!r} is not an integer") from None
        if number < minimum:
            raise UsageError(f"--{name} must be at least {minimum}, got {number}")
        checked.append(number)
    if not checked:
        raise UsageError(f"--{name} is empty")
    return sorted(set(checked), key=checked.index)


def plan_suite(suite: Suite) -> Plan:
    """Every cell of the suite, resolved, with incompatible combinations listed apart.

    Raises :class:`UsageError`/:class:`PluginError` (one line) for unknown names, bad
    parameters, and shot counts a dataset cannot provide — before anything trains."""
    plan = Plan()
    seen: set[str] = set()
    hashes: dict[str, str] = {}  # content hashes and extractor identities, once per plan
    for part in suite.parts():
        sub = _plan_part(part, hashes)
        plan.cells += [cell for cell in sub.cells if cell["run_id"] not in seen]
        seen.update(cell["run_id"] for cell in sub.cells)
        plan.skipped += sub.skipped
    return plan


def _memo(hashes: dict[str, str], kind: str, ref: dict[str, Any], compute: Any) -> str:
    key = f"{kind}:{json.dumps(ref, sort_keys=True, default=str)}"
    if key not in hashes:
        hashes[key] = compute()
    return hashes[key]


def extractor_identity(extractor: Any) -> str:
    """The extractor's identity (its weights hash): fetches declared weights first when
    they are not here yet, failing in one line when they cannot be obtained."""
    from gtbench.errors import MissingAssetError

    try:
        return str(extractor.identity())
    except MissingAssetError:
        from gtbench.files.assets import fetch

        for asset in type(extractor).assets:
            fetch(asset)
        return str(extractor.identity())


def _plan_part(suite: Suite, hashes: dict[str, str]) -> Plan:
    from gtbench.measure.eval_settings import PROTOCOL_VERSION
    from gtbench.train.trainer import TRAINER_VERSION

    shots = _check_ints("shots", suite.shots, 1)
    seeds = _check_ints("seeds", suite.seeds, 0)
    for what in ("sources", "methods", "datasets"):
        if not getattr(suite, what):
            raise UsageError(f"no {what} selected")
    sources = [plugin_ref("source", r) for r in suite.sources]
    methods = [plugin_ref("method", r) for r in suite.methods]
    datasets = [plugin_ref("dataset", r) for r in suite.datasets]
    extractor = plugin_ref("extractor", suite.extractor)
    extractor["identity"] = _memo(
        hashes,
        "extractor",
        extractor,
        lambda: extractor_identity(make_plugin("extractor", extractor)),
    )
    try:
        train = dataclasses.asdict(suite.train_config())
        evaluation = dataclasses.asdict(suite.eval_settings())
    except TypeError as error:
        raise UsageError(f"bad train/eval setting: {error}") from None
    if train["iters"] < 0 or train["batch_size"] < 1:
        raise UsageError("--iters must be >= 0 and --batch-size >= 1")
    if evaluation["n_samples"] < 2:
        raise UsageError("--n-samples must be at least 2")
    if not isinstance(suite.curve, int) or suite.curve < 0:
        raise UsageError(f"curve must be a whole number of points >= 0, got {suite.curve!r}")
    if not isinstance(suite.curve_n_samples, int) or suite.curve_n_samples < 2:
        raise UsageError(f"curve_n_samples must be an integer >= 2, got {suite.curve_n_samples!r}")
    if suite.evaluate_on not in ("evaluation", "validation"):
        raise UsageError(
            f'evaluate_on must be "evaluation" or "validation", got {suite.evaluate_on!r}'
        )

    dataset_objects: list[Dataset] = [make_plugin("dataset", d) for d in datasets]
    for ref, dataset in zip(datasets, dataset_objects, strict=True):
        pool = dataset.info.shot_pool
        too_many = [k for k in shots if k > pool]
        if too_many:
            raise UsageError(
                f"--shots {too_many[0]} is larger than dataset {describe(ref, 'dataset')!r} "
                f"allows ({dataset.info.size} images, shot pool {pool})"
            )
        if suite.evaluate_on == "validation" and dataset.info.validation <= 0:
            raise UsageError(
                f'evaluate_on = "validation": dataset {describe(ref, "dataset")!r} has no '
                "validation split"
            )
    plan = Plan()
    for source_ref in sources:
        source: Source = make_plugin("source", source_ref)
        info = source.info
        for method_ref in methods:
            method: Method = make_plugin("method", method_ref)
            reason = method.incompatibility(info)
            for dataset_ref, dataset in zip(datasets, dataset_objects, strict=True):
                if reason is not None:
                    plan.skipped.append(
                        Skipped(
                            describe(source_ref, "source"),
                            describe(method_ref, "method"),
                            describe(dataset_ref, "dataset"),
                            reason,
                        )
                    )
                    continue
                # the target as this source sees it (its resolution and channels)
                content = matched_content_hash(
                    _memo(hashes, "dataset", dataset_ref, dataset.content_hash),
                    info.resolution,
                    info.channels,
                )
                for k, seed in itertools.product(shots, seeds):
                    cell = {
                        "schema_version": SCHEMA_VERSION,
                        "protocol_version": PROTOCOL_VERSION,
                        "trainer_version": TRAINER_VERSION if method.trains() else None,
                        "source": source_ref,
                        "method": method_ref,
                        "dataset": dataset_ref,
                        "dataset_content": content,
                        "shots": k,
                        "seed": seed,
                        "train": train if method.trains() else {},
                        "eval": {"extractor": extractor, **evaluation},
                        "keep_weights": suite.keep_weights,
                    }
                    if suite.curve and method.trains():
                        cell["curve"] = {"points": suite.curve, "n_samples": suite.curve_n_samples}
                    if suite.evaluate_on == "validation":
                        cell["split"] = "validation"
                    if suite.budget:
                        cell["budget"] = suite.budget
                    cell["run_id"] = run_id_of(cell)
                    plan.cells.append(cell)
    return plan
