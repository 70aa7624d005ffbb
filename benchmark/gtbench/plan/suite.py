"""A suite names a whole sweep: sources × methods × datasets × shots × seeds, the trainer
budget and the evaluation protocol. Suites are TOML or YAML files; unknown keys are an
error, never silently ignored. Command-line options override a suite's values.

Example::

    sources  = ["animals-dcgan32"]
    methods  = ["finetune", "freeze-d:layers=2"]
    datasets = ["animals-cat", {name = "folder", path = "~/cats", res = 32}]
    shots    = [10]
    seeds    = [0, 1, 2]

    [train]
    iters = 300
    batch_size = 16

    [eval]
    extractor = "shapes-cnn"   # required: the features FID/KID are computed in
    n_samples = 1000
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import tomllib

from gtbench.errors import UsageError
from gtbench.measure.eval_settings import EvalSettings
from gtbench.plugin.spec import coerce
from gtbench.train.trainer import TrainConfig

PluginRef = str | dict[str, Any]

DEFAULT_SUITE = "default"


@dataclass
class Suite:
    """A sweep description, as read from a suite file and the command line."""

    name: str = "custom"
    sources: list[PluginRef] = field(default_factory=list)
    methods: list[PluginRef] = field(default_factory=list)
    datasets: list[PluginRef] = field(default_factory=list)
    shots: list[int] = field(default_factory=lambda: [10])
    seeds: list[int] = field(default_factory=lambda: [0])
    extractor: PluginRef = ""  # a suite file must name one (`debug` is not a metric)
    train: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] = field(default_factory=dict)
    launcher: PluginRef = "local"
    workers: int = 0  # 0: the launcher decides (process: one per GPU, else 1)
    keep_weights: bool = True
    # FID over training: the EMA evaluated at `curve` evenly spaced steps (0: off) with a
    # cheaper evaluation of `curve_n_samples` images; never the ranked number
    curve: int = 0
    curve_n_samples: int = 250
    # "validation": every cell (and its curve) is judged on the target's validation split,
    # never its evaluation set: for studies that choose a protocol setting (the budgets)
    evaluate_on: str = "evaluation"
    # the name of this budget ("adapted", "long"): the leaderboard ranks each named budget
    # apart and never pools them; part of a cell's identity when set
    budget: str = ""
    # Parts of one sweep that need their own settings (a 64 px source with a smaller
    # budget, say): each table overrides the fields above for its own cross product.
    sweeps: list[dict[str, Any]] = field(default_factory=list)
    # `gtbench tune`: trials, metric, trial seeds and evaluation, per-method search-space
    # overrides (see gtbench.plan.tune_settings); ignored by `gtbench run`
    tune: dict[str, Any] = field(default_factory=dict)

    def override(self, section: str | None = None, **values: Any) -> None:
        """Set fields (or ``train``/``eval`` keys) here *and* in every ``sweeps`` entry:
        command-line options win over everything a suite file says."""
        for key, value in values.items():
            if section is None:
                setattr(self, key, value)
            else:
                getattr(self, section)[key] = value
            for part in self.sweeps:
                if section is None:
                    part.pop(key, None)
                elif key in part.get(section, {}):
                    part[section][key] = value

    def parts(self) -> list[Suite]:
        """The suite itself, or one suite per entry of ``sweeps`` (fields merged)."""
        if not self.sweeps:
            return [self]
        parts = []
        for index, override in enumerate(self.sweeps):
            base = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
            base.update(sweeps=[], train=dict(self.train), eval=dict(self.eval))
            merged = suite_from_mapping(
                {**base, **{k: v for k, v in override.items() if k not in ("train", "eval")}},
                f"suite {self.name!r} sweeps[{index}]",
            )
            merged.train.update(override.get("train", {}))
            merged.eval.update(override.get("eval", {}))
            suite_from_mapping({"train": merged.train, "eval": merged.eval}, f"sweeps[{index}]")
            parts.append(merged)
        return parts

    def train_config(self) -> TrainConfig:
        return TrainConfig(**self.train)

    def eval_settings(self) -> EvalSettings:
        return EvalSettings(**self.eval)


_TOP_KEYS = {f.name for f in dataclasses.fields(Suite)}
_LIST_KEYS = {"sources", "methods", "datasets", "shots", "seeds"}


def suite_from_mapping(data: dict[str, Any], origin: str) -> Suite:
    """Validate a parsed suite file; every unknown key is an error naming the file."""
    data = dict(data)
    if "eval" in data and "extractor" in data["eval"]:
        data["eval"] = dict(data["eval"])
        data["extractor"] = data["eval"].pop("extractor")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise UsageError(
            f"{origin}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_TOP_KEYS))})"
        )
    for key in _LIST_KEYS & set(data):
        if not isinstance(data[key], list):
            data[key] = [data[key]]
    _check_section(data.get("train", {}), TrainConfig, f"{origin} [train]")
    _check_section(data.get("eval", {}), EvalSettings, f"{origin} [eval]")
    if "tune" in data:
        from gtbench.plan.tune_settings import tune_settings

        tune_settings(data["tune"], f"{origin} [tune]")
    suite = Suite(**data)
    suite.parts()  # validates every entry of `sweeps` now, not when the sweep starts
    return suite


def _check_extractor_named(data: dict[str, Any], origin: str) -> None:
    """A suite names its FID/KID extractor (top level, ``[eval]`` or every ``[[sweeps]]``):
    a silent default would rank methods in the feature space of a random network."""

    def names(table: Any) -> bool:
        return isinstance(table, dict) and bool(
            table.get("extractor") or (table.get("eval") or {}).get("extractor")
        )

    sweeps = data.get("sweeps") or []
    if not names(data) and not (sweeps and all(names(part) for part in sweeps)):
        raise UsageError(
            f'{origin}: no extractor named; add e.g. extractor = "shapes-cnn" (the features '
            'FID/KID are computed in; "debug" is a random network, not a metric)'
        )


def _check_section(section: Any, cls: type, origin: str) -> None:
    if not isinstance(section, dict):
        raise UsageError(f"{origin}: expected a table, got {section!r}")
    if cls is TrainConfig and "augment" in section:
        raise UsageError(
            f"{origin}: 'augment' is not a trainer setting any more; augmentation is a method: "
            'use methods = ["diffaugment"] (or "diffaugment:policy=color,translation")'
        )
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise UsageError(
            f"{origin}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
        )
    # typed like the field's default and normalised in place (iters = "300" → 300,
    # 2.0 → 2), so a value enters run_id in one form; a wrong type is one line
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    for key, value in section.items():
        try:
            section[key] = coerce(value, defaults[key])
        except ValueError as error:
            raise UsageError(f"{origin}: {key} = {value!r}: {error}") from None


def load_suite(path: str | Path) -> Suite:
    """Read a suite from a TOML or YAML file, or a built-in suite by name."""
    path_str = str(path)
    builtin = resources.files("gtbench") / "suites" / f"{path_str}.toml"
    if not Path(path_str).exists() and builtin.is_file():
        data = {"name": path_str, **tomllib.loads(builtin.read_text())}
        suite = suite_from_mapping(data, f"suite {path_str!r}")
        _check_extractor_named(data, f"suite {path_str!r}")
        return suite
    file = Path(path_str).expanduser()
    if not file.is_file():
        raise UsageError(f"suite file {path_str!r} not found")
    text = file.read_text()
    try:
        if file.suffix in {".yaml", ".yml"}:
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except Exception as error:  # noqa: BLE001 - any parse error is the file's
        raise UsageError(f"suite file {path_str}: cannot parse: {error}") from None
    if not isinstance(data, dict):
        raise UsageError(f"suite file {path_str}: expected a table at the top level")
    data.setdefault("name", file.stem)
    suite = suite_from_mapping(data, f"suite file {path_str}")  # unknown keys first
    _check_extractor_named(data, f"suite file {path_str}")
    return suite
