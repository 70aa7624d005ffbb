"""Equal tuning: the same number of seeded random trials for every method, selected on a
validation split the reported numbers never see (DomainBed's lesson, for few-shot GANs).

A method's search space is what its :class:`~gtbench.plugin.base.Parameter` s declare
(``search=``) plus the trainer's learning rates (:data:`TRAINER_SEARCH`), minus anything
the user pinned (a parameter given in the method spec, a ``[train]`` setting), with the
suite's ``[tune.search.<method>]`` overrides applied. The budget (``iters``,
``batch_size``, ``d_warmup``) is never searched: every trial and every method gets the
same one.

Trial 0 of every method is its default configuration; trials 1..N-1 draw each searched
value from its own stream seeded by (tuning seed, method, trial, name). Each trial is an
ordinary cell (``split: "validation"``, ``selection: "trial"``), so resume, launchers and
records work unchanged. Trial seeds are never evaluation seeds, and a trial's shots are
drawn from the shot pool less every evaluation seed's shots (by content;
:meth:`~gtbench.plugin.base.Dataset.split_apart`), so selection never trains on an evaluated
seed's images; the tuned records name the trial shots' hashes. Per target (source ×
dataset × shots) the trial with the lowest mean validation FID over the trial seeds wins
(KID where FID is not valid for the validation size, or when asked); the winner then runs
on the evaluation set with the suite's seeds as cells labelled ``selection:
"tuned-validation"`` whose records carry the whole trial history.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gtbench.errors import UsageError
from gtbench.plan import identity
from gtbench.plan.tune_settings import TuneSettings, tune_settings
from gtbench.plugin.search import Distribution, LogUniform, parse_distribution, sample_space

if TYPE_CHECKING:
    from gtbench.plan.cells import Cell, Plan
    from gtbench.plan.suite import Suite

__all__ = [
    "BUDGET_SETTINGS",
    "SELECTIONS",
    "TRAINER_SEARCH",
    "Trial",
    "TuneSettings",
    "TuningPlan",
    "final_plan",
    "plan_trials",
    "search_space",
    "select",
    "tune_settings",
    "validation_problem",
]

# What a selection is called in records and the leaderboard (never averaged across).
SELECTIONS = ("default", "tuned-validation", "tuned-evaluation")
TRIAL = "trial"
# The trainer's searched settings, around its defaults (2e-4 for both networks): a factor
# of four either way covers the 1e-4 … 1e-3 range few-shot GAN papers use with Adam.
TRAINER_SEARCH: dict[str, Distribution] = {
    "lr_g": LogUniform(5e-5, 8e-4),
    "lr_d": LogUniform(5e-5, 8e-4),
}
# The equal budget: never tuned (a suite asking for it is a usage error).
BUDGET_SETTINGS = frozenset({"iters", "batch_size", "d_warmup", "check_every"})
# --------------------------------------------------------------------------- spaces


def _train_fields() -> set[str]:
    from gtbench.train.trainer import TrainConfig

    return {f.name for f in dataclasses.fields(TrainConfig)}


def search_space(
    method: str,
    pinned: Mapping[str, Any],
    trains: bool,
    overrides: Mapping[str, Any] | None = None,
    pinned_train: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Distribution], dict[str, Any]]:
    """The searched distributions and the fixed values of ``method``.

    Keys are the method's parameter names and ``train.<setting>`` for trainer settings.
    ``pinned`` (parameters the user gave in the method spec) and ``pinned_train`` (the
    suite's ``[train]`` table) are never searched; ``overrides`` (the suite's
    ``[tune.search.<method>]``) replace a declared distribution, add one, or fix a value."""
    from gtbench.plugin import registry

    cls = registry.methods().get(method)
    space: dict[str, Distribution] = {
        key: p.search for key, p in cls.parameters.items() if p.search is not None
    }
    if trains:
        space.update({f"train.{k}": d for k, d in TRAINER_SEARCH.items()})
    fixed: dict[str, Any] = {}
    train_fields = _train_fields()
    for key, value in (overrides or {}).items():
        if key.startswith("train."):
            setting = key.removeprefix("train.")
            if setting not in train_fields:
                raise UsageError(f"[tune.search.{method}]: {key!r} is not a trainer setting")
            if setting in BUDGET_SETTINGS:
                raise UsageError(
                    f"[tune.search.{method}]: {key!r} is part of the equal budget and is "
                    "never tuned"
                )
        elif key not in cls.parameters:
            accepted = ", ".join(sorted(cls.parameters)) or "none"
            raise UsageError(
                f"[tune.search.{method}]: method {method!r} has no parameter {key!r} "
                f"(accepted: {accepted}, or train.<setting>)"
            )
        if isinstance(value, str) and "(" in value:
            try:
                space[key] = parse_distribution(value)
            except ValueError as error:
                raise UsageError(f"[tune.search.{method}] {key}: {error}") from None
        else:
            space.pop(key, None)
            fixed[key] = value
    for key in pinned:
        space.pop(key, None)
    for key in pinned_train or {}:
        space.pop(f"train.{key}", None)
    if not trains:
        space = {k: v for k, v in space.items() if not k.startswith("train.")}
    return space, fixed


def _coerce(value: Any, default: Any) -> Any:
    """A drawn value in the type of the setting's default; floats to 4 significant digits
    so configurations stay readable in labels."""
    if isinstance(default, bool):
        return bool(value)
    if isinstance(default, int) and isinstance(value, (int, float)):
        return int(round(value))
    if isinstance(value, float):
        return float(f"{value:.4g}")
    return value


def trial_values(
    space: Mapping[str, Distribution], *, seed: int, method: str, trial: int
) -> dict[str, Any]:
    """Trial 0: the defaults (nothing drawn); later trials: one seeded draw per name."""
    if trial == 0:
        return {}
    return sample_space(space, seed=seed, method=method, trial=trial)


# --------------------------------------------------------------------------- plans


@dataclass
class Trial:
    """One configuration of one method on one target, and the cells that measure it."""

    index: int
    method: dict[str, Any]  # method parameters given to the spec (pinned + drawn)
    train: dict[str, Any]  # the trial's [train] table
    values: dict[str, Any] = field(default_factory=dict)  # what tuning set (drawn or fixed)
    run_ids: list[str] = field(default_factory=list)


@dataclass
class TuningPlan:
    """The trial cells, and per target the trials that compete."""

    settings: TuneSettings
    cells: Plan
    # (part, method label, source, dataset, shots) → trials in index order
    targets: dict[tuple[Any, ...], list[Trial]] = field(default_factory=dict)
    parts: list[Suite] = field(default_factory=list)
    spaces: dict[str, dict[str, str]] = field(default_factory=dict)  # method label → shown
    # (dataset, shots) → trial seed → the content hashes of that trial's shots
    trial_shots: dict[tuple[str, int], dict[str, list[str]]] = field(default_factory=dict)


def _rehash(cell: Cell) -> None:
    """A trial or tuned cell's new ``run_id``, after tuning changed its fields."""
    cell["run_id"] = identity.run_id_of(cell)


def _ref(resolved: dict[str, Any]) -> dict[str, Any]:
    """A resolved ``{"name", "params", ...}`` back into a suite plugin table."""
    return {"name": resolved["name"], **resolved["params"]}


def _json(value: Any) -> str:
    return identity.canonical_json(value, compact=False)


def validation_problem(dataset: Any) -> str | None:
    """Why ``dataset`` cannot be tuned on (no validation split, or one that shares an
    image, by content, with its shot pool or evaluation set), or None."""
    from gtbench.plugin.images import image_sha256s

    info = dataset.info
    try:
        indices = dataset.validation_indices()
    except ValueError as error:
        return str(error)
    if not indices:
        return (
            f"dataset {dataset.name!r} has no validation split ({info.size} images, shot "
            f"pool {info.shot_pool}); tuning needs images outside the shot pool that "
            "evaluation never sees"
        )
    images = dataset.images()
    validation = set(image_sha256s(images[indices]))
    pool = set(image_sha256s(images[dataset.shot_pool()]))
    evaluation = set(image_sha256s(dataset.evaluation_images()))
    for name, other in (("shot pool", pool), ("evaluation set", evaluation)):
        shared = len(validation & other)
        if shared:
            return (
                f"dataset {dataset.name!r}: {shared} validation images are also in its "
                f"{name} (same content); tuning on them would leak"
            )
    return None


def check_datasets(suite: Suite, settings: TuneSettings) -> None:
    """Refuse, in one line, a dataset tuning cannot select on."""
    if settings.select_on != "validation":
        return
    from gtbench.plan.cells import describe, make_plugin, plugin_ref

    seen: set[str] = set()
    for part in suite.parts():
        for ref in part.datasets:
            resolved = plugin_ref("dataset", ref)
            key = _json(resolved)
            if key in seen:
                continue
            seen.add(key)
            problem = validation_problem(make_plugin("dataset", resolved))
            if problem is not None:
                raise UsageError(
                    f"cannot tune on {describe(resolved, 'dataset')}: {problem.rstrip('.')}"
                )


def trial_shots(
    dataset_ref: dict[str, Any], shots: int, trial_seeds: list[int], evaluation_seeds: list[int]
) -> dict[str, list[str]]:
    """Trial seed → the content hashes of its shots, drawn apart from every evaluation
    seed's shots; refuses, in one line, trial seeds that are evaluation seeds or shots
    that an evaluation seed also trains on (by content)."""
    from gtbench.plan.cells import describe, make_plugin

    name = describe(dataset_ref, "dataset")
    shared_seeds = sorted(set(trial_seeds) & set(evaluation_seeds))
    if shared_seeds:
        raise UsageError(
            f"cannot tune on {name}: trial seeds {shared_seeds} are also evaluation seeds "
            f"{sorted(evaluation_seeds)}; selection must never see an evaluation seed "
            "(choose trial seeds outside them, e.g. [tune] seeds = [1000])"
        )
    dataset = make_plugin("dataset", dataset_ref)
    evaluated = {h for s in evaluation_seeds for h in dataset.shot_sha256s(dataset.split(shots, s))}
    hashes: dict[str, list[str]] = {}
    for seed in trial_seeds:
        try:
            split = dataset.split_apart(shots, seed, evaluation_seeds)
        except ValueError as error:
            raise UsageError(f"cannot tune on {name}: {str(error).rstrip('.')}") from None
        hashes[str(seed)] = dataset.shot_sha256s(split)
        shared = len(evaluated & set(hashes[str(seed)]))
        if shared:
            raise UsageError(
                f"cannot tune on {name}: {shared} of the {shots} shots of trial seed {seed} "
                f"are also shots of evaluation seeds {sorted(evaluation_seeds)} (same content)"
            )
    return hashes


def plan_trials(suite: Suite, settings: TuneSettings) -> TuningPlan:
    """Every trial cell of every method (the same number for each), before anything runs."""
    from gtbench.plan.cells import Plan, plan_suite
    from gtbench.plugin import registry
    from gtbench.plugin.spec import parse_spec

    check_datasets(suite, settings)
    plan = TuningPlan(settings, Plan())
    seen: set[str] = set()
    for part_index, part in enumerate(suite.parts()):
        plan.parts.append(part)
        for method_ref in part.methods:
            spec = parse_spec(method_ref)
            label = str(spec)
            method = registry.methods().create(spec)
            space, fixed = search_space(
                spec.name,
                spec.params,
                method.trains(),
                settings.search.get(spec.name),
                part.train,
            )
            plan.spaces[label] = {k: str(v) for k, v in sorted(space.items())}
            defaults = {k: p.default for k, p in type(method).parameters.items()}
            trainer_defaults = dataclasses.asdict(part.train_config())
            for index in range(settings.trials if space else 1):
                drawn = trial_values(space, seed=settings.seed, method=spec.name, trial=index)
                values = {**fixed, **drawn}
                method_params = dict(spec.params)
                train = dict(part.train)
                for key, value in sorted(values.items()):
                    if key.startswith("train."):
                        name = key.removeprefix("train.")
                        values[key] = train[name] = _coerce(value, trainer_defaults[name])
                    else:
                        values[key] = method_params[key] = _coerce(value, defaults[key])
                sub = dataclasses.replace(
                    part,
                    methods=[{"name": spec.name, **method_params}],
                    train=train,
                    eval={**part.eval, **settings.eval},
                    seeds=list(settings.seeds),
                    sweeps=[],
                )
                sub_plan = plan_suite(sub)
                if index == 0:
                    plan.cells.skipped += sub_plan.skipped
                for cell in sub_plan.cells:
                    cell["selection"] = TRIAL
                    # drawn apart from the shots of every seed the suite evaluates
                    cell["shots_apart_from_seeds"] = sorted(part.seeds)
                    shots_key = (_json(cell["dataset"]), cell["shots"])
                    if shots_key not in plan.trial_shots:
                        plan.trial_shots[shots_key] = trial_shots(
                            cell["dataset"], cell["shots"], list(settings.seeds), list(part.seeds)
                        )
                    if settings.select_on == "validation":
                        cell["split"] = "validation"
                    _rehash(cell)
                    key = (
                        part_index,
                        label,
                        _json(cell["source"]),
                        _json(cell["dataset"]),
                        cell["shots"],
                    )
                    trials = plan.targets.setdefault(key, [])
                    if not trials or trials[-1].index != index:
                        trials.append(Trial(index, method_params, train, values))
                    trials[-1].run_ids.append(cell["run_id"])
                    if cell["run_id"] not in seen:
                        seen.add(cell["run_id"])
                        plan.cells.cells.append(cell)
    return plan


# --------------------------------------------------------------------------- selection


def _fid_valid(record: dict[str, Any]) -> bool:
    from gtbench.results.leaderboard import fid_valid

    return fid_valid(record)


@dataclass
class Selection:
    """The winning trial of one target, the metric it won on, and every trial's numbers."""

    trial: Trial | None
    metric: str
    history: list[dict[str, Any]]
    reason: str = ""  # why nothing was selected


def select(plan: TuningPlan, results_dir: str) -> dict[tuple[Any, ...], Selection]:
    """Per target, the trial with the lowest mean selection metric over the trial seeds.

    A trial with any cell missing or not ``ok`` is out; ties go to the lower trial index
    (trial 0, the defaults, first)."""
    from gtbench.results.records import load_record

    chosen: dict[tuple[Any, ...], Selection] = {}
    for key, trials in plan.targets.items():
        records = {run_id: load_record(results_dir, run_id) for t in trials for run_id in t.run_ids}
        ok = [r for r in records.values() if r and r.get("status") == "ok"]
        metric = plan.settings.metric
        if metric == "auto":
            metric = "fid" if ok and all(_fid_valid(r) for r in ok) else "kid"
        column = "fid" if metric == "fid" else "kid_mean"
        history, best, best_value = [], None, math.inf
        for trial in trials:
            values, statuses = [], []
            for run_id in trial.run_ids:
                record = records[run_id]
                statuses.append(record["status"] if record else "missing")
                value = (record or {}).get("metrics", {}).get(column)
                if record and record["status"] == "ok" and isinstance(value, (int, float)):
                    values.append(float(value))
            complete = len(values) == len(trial.run_ids) and all(map(math.isfinite, values))
            score = sum(values) / len(values) if complete else math.nan
            history.append(
                {
                    "trial": trial.index,
                    "values": trial.values,
                    "method_params": trial.method,
                    "train": trial.train,
                    "run_ids": trial.run_ids,
                    "statuses": statuses,
                    column: values,
                    "score": score,
                }
            )
            if complete and score < best_value:
                best, best_value = trial, score
        reason = "" if best else "no trial finished ok"
        chosen[key] = Selection(best, metric, history, reason)
    return chosen


def final_plan(plan: TuningPlan, selections: dict[tuple[Any, ...], Selection]) -> Plan:
    """The selected configuration of every target on the evaluation set, with the suite's
    seeds, labelled ``tuned-validation`` (or ``tuned-evaluation``) and carrying the
    trial history."""
    from gtbench.plan.cells import Plan, plan_suite

    final = Plan()
    for key, selection in selections.items():
        if selection.trial is None:
            continue
        part = plan.parts[key[0]]
        source, dataset, shots = json.loads(key[2]), json.loads(key[3]), key[4]
        method_name = key[1].partition(":")[0]
        sub = dataclasses.replace(
            part,
            sources=[_ref(source)],
            methods=[{"name": method_name, **selection.trial.method}],
            datasets=[_ref(dataset)],
            shots=[shots],
            train=selection.trial.train,
            sweeps=[],
        )
        trial_ids = sorted(run_id for t in plan.targets[key] for run_id in t.run_ids)
        for cell in plan_suite(sub).cells:
            cell["selection"] = plan.settings.label
            cell["tuning"] = {
                "select_on": plan.settings.select_on,
                "metric": selection.metric,
                "trials": len(plan.targets[key]),
                "trial_seeds": list(plan.settings.seeds),
                # the trials' shots by content: disjoint from every evaluation seed's
                "trial_shots_sha256": plan.trial_shots.get((key[3], shots), {}),
                "selected_trial": selection.trial.index,
                # what tuning chose ("train.lr_g", a method parameter): the leaderboard
                # may leave these out of a row's training protocol, keeping the budget
                "searched": sorted(plan.spaces[key[1]]),
                "trial_run_ids": trial_ids,
            }
            _rehash(cell)
            cell["tuning_history"] = selection.history
            final.cells.append(cell)
    return final
