"""Turning a suite into cells: the cross product and each cell's resolved configuration,
with its ``run_id`` from :mod:`gtbench.plan.identity`."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import Any, TypedDict

from gtbench.errors import UsageError
from gtbench.plan import identity
from gtbench.plan.suite import PluginRef as SuiteRef
from gtbench.plan.suite import Suite
from gtbench.plugin import registry
from gtbench.plugin.base import Dataset, Plugin, Source
from gtbench.plugin.images import compared_channels
from gtbench.plugin.spec import PluginSpec, parse_spec
from gtbench.train.method import Method


class PluginRef(TypedDict):
    """A resolved plugin: its name, every parameter (defaults filled in) and its class's
    ``version``; an extractor's also carries ``identity`` (its weights hash)."""

    name: str
    params: dict[str, Any]
    version: str


class _CellRequired(TypedDict):
    schema_version: int  # identity.SCHEMA_VERSION
    protocol_version: str
    trainer_version: str | None  # None for methods that do not train
    source: PluginRef
    method: PluginRef
    dataset: PluginRef
    dataset_content: str  # the target's content at the source's format
    shots: int
    seed: int
    train: dict[str, Any]  # TrainConfig fields; {} for methods that do not train
    eval: dict[str, Any]  # {"extractor": PluginRef + identity, **EvalSettings fields}
    keep_weights: bool
    run_id: str  # identity.run_id_of(the rest)


class Cell(_CellRequired, total=False):
    """One source × method × target × shots × seed with every setting resolved: what a
    launcher runs and :func:`gtbench.results.records.new_record` turns into a record.
    Built by :func:`plan_suite`; ``gtbench tune`` adds the optional fields and re-hashes
    (:func:`gtbench.plan.identity.run_id_of`). A JSON-able dict, so it crosses process
    and cluster boundaries as it is."""

    curve: dict[str, int]  # {"points", "n_samples"}; never part of the identity
    selection: str  # "trial", "tuned-validation", ...; absent: "default"
    split: str  # "validation" for tuning trials and regime cells; absent: "evaluation"
    budget: str  # the suite part's named horizon ("adapted", "long"); absent: none
    shots_apart_from_seeds: list[int]  # a trial's shots are drawn apart from these seeds'
    tuning: dict[str, Any]  # how a tuned cell's configuration was chosen
    tuning_history: list[dict[str, Any]]  # every trial of that choice (not identity)


def plugin_ref(kind: str, ref: SuiteRef) -> PluginRef:
    """Resolve a plugin reference to ``{"name", "params", "version"}``: every default
    filled in, and the plugin class's ``version``."""
    spec = parse_spec(ref)
    instance = registry.registry(kind).create(spec)
    return {
        "name": spec.name,
        "params": dict(sorted(instance.params.items())),
        "version": str(type(instance).version),
    }


def make_plugin(kind: str, ref: PluginRef) -> Any:
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


@dataclass
class Skipped:
    """A combination the plan leaves out, with the reason shown to the user."""

    source: str
    method: str
    dataset: str
    reason: str


@dataclass
class Plan:
    cells: list[Cell] = field(default_factory=list)
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
    hashes: dict[str, Any] = {}  # content hashes and extractor identities, once per plan
    for part in suite.parts():
        sub = _plan_part(part, hashes)
        plan.cells += [cell for cell in sub.cells if cell["run_id"] not in seen]
        seen.update(cell["run_id"] for cell in sub.cells)
        plan.skipped += sub.skipped
    return plan


def _memo(hashes: dict[str, Any], kind: str, ref: dict[str, Any], compute: Any) -> Any:
    key = f"{kind}:{identity.canonical_json(ref)}"
    if key not in hashes:
        hashes[key] = compute()
    return hashes[key]


def _extractor_ref(ref: dict[str, Any]) -> dict[str, Any]:
    """The extractor's part of a cell's identity (:func:`identity.extractor_ref`): fetches
    declared weights first when they are not here yet, failing in one line when they
    cannot be obtained."""
    from gtbench.errors import MissingAssetError

    extractor = make_plugin("extractor", ref)
    try:
        return identity.extractor_ref(extractor)
    except MissingAssetError:
        from gtbench.files.assets import fetch

        for asset in type(extractor).assets:
            fetch(asset)
        return identity.extractor_ref(extractor)


def _plan_part(suite: Suite, hashes: dict[str, Any]) -> Plan:
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
    extractor = _memo(hashes, "extractor", extractor, lambda: _extractor_ref(extractor))
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
                content = identity.matched_content_hash(
                    _memo(hashes, "dataset", dataset_ref, dataset.content_hash),
                    info.resolution,
                    info.channels,
                    compared_channels(info.channels, dataset.info.channels),
                )
                for k, seed in itertools.product(shots, seeds):
                    cell: Cell = {
                        "schema_version": identity.SCHEMA_VERSION,
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
                    cell["run_id"] = identity.run_id_of(cell)
                    plan.cells.append(cell)
    return plan
