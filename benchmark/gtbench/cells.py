"""Turning a suite into cells: the cross product, each cell's resolved configuration and
its ``run_id`` (a hash of everything that can change its numbers)."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from gtbench import registry
from gtbench.errors import UsageError
from gtbench.method import Method
from gtbench.plugin import Dataset, Plugin, Source
from gtbench.spec import PluginSpec, parse_spec
from gtbench.suite import PluginRef, Suite

SCHEMA_VERSION = 1


def plugin_ref(kind: str, ref: PluginRef) -> dict[str, Any]:
    """Resolve a plugin reference to ``{"name", "params"}`` with every default filled in."""
    spec = parse_spec(ref)
    instance = registry.registry(kind).create(spec)
    return {"name": spec.name, "params": dict(sorted(instance.params.items()))}


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


def run_id_of(identity: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a cell's identity, shortened to 16 hex digits."""
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
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
    for part in suite.parts():
        sub = _plan_part(part)
        plan.cells += [cell for cell in sub.cells if cell["run_id"] not in seen]
        seen.update(cell["run_id"] for cell in sub.cells)
        plan.skipped += sub.skipped
    return plan


def _plan_part(suite: Suite) -> Plan:
    shots = _check_ints("shots", suite.shots, 1)
    seeds = _check_ints("seeds", suite.seeds, 0)
    for what in ("sources", "methods", "datasets"):
        if not getattr(suite, what):
            raise UsageError(f"no {what} selected")
    sources = [plugin_ref("source", r) for r in suite.sources]
    methods = [plugin_ref("method", r) for r in suite.methods]
    datasets = [plugin_ref("dataset", r) for r in suite.datasets]
    extractor = plugin_ref("extractor", suite.extractor)
    try:
        train = dataclasses.asdict(suite.train_config())
        evaluation = dataclasses.asdict(suite.eval_settings())
    except TypeError as error:
        raise UsageError(f"bad train/eval setting: {error}") from None
    if train["iters"] < 0 or train["batch_size"] < 1:
        raise UsageError("--iters must be >= 0 and --batch-size >= 1")
    if evaluation["n_samples"] < 2:
        raise UsageError("--n-samples must be at least 2")

    dataset_objects: list[Dataset] = [make_plugin("dataset", d) for d in datasets]
    for ref, dataset in zip(datasets, dataset_objects, strict=True):
        pool = dataset.info.shot_pool
        too_many = [k for k in shots if k > pool]
        if too_many:
            raise UsageError(
                f"--shots {too_many[0]} is larger than dataset {describe(ref, 'dataset')!r} "
                f"allows ({dataset.info.size} images, shot pool {pool})"
            )
    plan = Plan()
    for source_ref in sources:
        source: Source = make_plugin("source", source_ref)
        for method_ref in methods:
            method: Method = make_plugin("method", method_ref)
            reason = method.incompatibility(source.info)
            for dataset_ref in datasets:
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
                for k, seed in itertools.product(shots, seeds):
                    identity = {
                        "schema_version": SCHEMA_VERSION,
                        "source": source_ref,
                        "method": method_ref,
                        "dataset": dataset_ref,
                        "shots": k,
                        "seed": seed,
                        "train": train if method.trains() else {},
                        "eval": {"extractor": extractor, **evaluation},
                    }
                    cell = dict(
                        identity, run_id=run_id_of(identity), keep_weights=suite.keep_weights
                    )
                    plan.cells.append(cell)
    return plan
