"""Identity: every "same run / same configuration / same evaluation" question, answered once.

- **Same run** — :func:`run_id_of`: the hash of a cell's identity (:func:`identity_of`):
  plugin names, parameters and versions, trainer and protocol versions, the target's
  content at the source's format (:func:`matched_content_hash`), the extractor's identity
  (:func:`extractor_ref`), shots, seed, and the train/eval settings that can change a
  number. Equal run ids are the same cell; :func:`cell_of` rebuilds from a record the cell
  it was made from, so a record's id can be recomputed.
- **Same configuration** — :func:`same_configuration` (via :func:`cell_key`): the same
  cell up to code versions and data, the question staleness and ``--keep-stale`` ask;
  :func:`difference`, :func:`changed_versions` and :func:`parameter_changes` say what
  differs.
- **Same evaluation** — :func:`evaluation_identity` (a record's reference set, extractor
  weights and sample settings) and :func:`protocol_of` (that and the training
  hyper-parameters): what a leaderboard row groups by.
- **Same features** — :func:`feature_identity` and the cache keys
  (:func:`reference_keys`), defined in :mod:`gtbench.measure.feature_identity` (the
  reference cache lives below this package) and re-exported here.

Cells and records are both accepted where a question applies to both. Light to import:
no torch (the trainer's settings are read when a cell's identity is computed).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from gtbench.measure.eval_settings import EvalSettings
from gtbench.measure.feature_identity import (
    canonical_json,
    digest,
    extractor_ref,
    feature_identity,
    reference_keys,
)

__all__ = [
    "DEFAULT_SELECTION",
    "EVAL_IDENTITY",
    "KINDS",
    "SCHEMA_VERSION",
    "budget_of",
    "canonical_json",
    "cell_key",
    "cell_of",
    "changed_versions",
    "difference",
    "digest",
    "eval_identity_fields",
    "evaluation_identity",
    "extractor_ref",
    "feature_identity",
    "identity_of",
    "matched_content_hash",
    "parameter_changes",
    "plugin_ref_of",
    "protocol_of",
    "reference_keys",
    "run_id_of",
    "same_configuration",
    "schema_of",
    "selection_of",
]

# The identity schema: part of every cell and so of every run_id (a cell's
# ``schema_version``). 2: run_id covers plugin, trainer and protocol versions, the
# dataset's content and the extractor's identity; ``train``/``eval`` settings that cannot
# change a number are left out. Records carry the same number (:mod:`gtbench.results.records`).
SCHEMA_VERSION = 2
KINDS = ("source", "method", "dataset", "extractor")
DEFAULT_SELECTION = "default"  # a configuration run as its plugins define it
# Keys of a cell that are not part of its identity: the id itself, whether weights are
# kept, the curve (never changes a number) and a tuned cell's trial history (added after
# its id is computed).
_NOT_IDENTITY = ("run_id", "keep_weights", "curve", "tuning_history")
# Record fields (under "eval") that define what a number measures; nothing else in
# "eval" (batch size, device, timings, notes, cache keys) may split a leaderboard row.
EVAL_IDENTITY = (
    "reference_key",
    "extractor_identity",
    "n_samples",
    "kid_subset_size",
    "kid_subsets",
)


# --------------------------------------------------------------------------- same run


def _identity_fields(cls: type) -> list[str]:
    """Fields of a settings dataclass that can change a number; a field declared with
    ``metadata={"identity": False}`` cannot (e.g. the evaluation batch size) and is left
    out of ``run_id``."""
    return [f.name for f in dataclasses.fields(cls) if f.metadata.get("identity", True)]


def eval_identity_fields() -> list[str]:
    """The evaluation settings that are part of a cell's identity."""
    return _identity_fields(EvalSettings)


def matched_content_hash(
    content_hash: str, resolution: int, channels: int, compared: int | None = None
) -> str:
    """The content hash of a dataset (``content_hash``) seen at ``resolution`` and
    ``channels`` (the source's format, as :class:`gtbench.launch.runner.MatchedTarget`
    converts it) and evaluated in ``compared`` channels
    (:func:`~gtbench.plugin.images.compared_channels`): part of a cell's identity,
    computed at plan time without converting any image. ``compared`` enters the hash only
    where it differs from ``channels`` (a grey target of a colour source), so every other
    cell keeps its identity."""
    from gtbench.plugin.images import RESIZE_MODE  # torch: only when a plan is made

    key = f"{content_hash}:{resolution}:{channels}:{RESIZE_MODE}"
    if compared is not None and compared != channels:
        key += f":compared-in-{compared}"
    return hashlib.sha256(key.encode()).hexdigest()


def identity_of(cell: dict[str, Any]) -> dict[str, Any]:
    """What a cell's ``run_id`` hashes: the whole cell except ``run_id``, ``keep_weights``,
    the curve, a tuned cell's trial history, and the train/eval settings that cannot
    change a number."""
    from gtbench.train.trainer import TrainConfig  # torch: only when an id is computed

    identity = {k: v for k, v in cell.items() if k not in _NOT_IDENTITY}
    for key, cls in (("train", TrainConfig), ("eval", EvalSettings)):
        if isinstance(identity.get(key), dict):
            dropped = {f.name for f in dataclasses.fields(cls)} - set(_identity_fields(cls))
            identity[key] = {k: v for k, v in identity[key].items() if k not in dropped}
    return identity


def run_id_of(cell: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a cell's identity, shortened to 16 hex digits."""
    return digest(identity_of(cell), length=16)


def cell_of(record: dict[str, Any]) -> dict[str, Any]:
    """The planned cell a record was made from, as far as its identity goes: its
    :func:`run_id_of` is the record's ``run_id`` (``perf/numbers_unchanged.py`` checks
    every committed record)."""
    evaluation = record["eval"]
    cell = {
        "schema_version": record["schema_version"],
        "protocol_version": record["protocol_version"],
        "trainer_version": record["trainer_version"],
        "source": record["source"],
        "method": record["method"],
        "dataset": record["dataset"],
        "dataset_content": record["dataset_content"],
        "shots": record["shots"],
        "seed": record["seed"],
        "train": record["hparams"]["train"],
        "eval": {
            "extractor": evaluation["extractor"],
            # a record stores the KID subset size used next to the one requested
            **{
                key: evaluation.get(f"{key}_requested", evaluation.get(key))
                for key in eval_identity_fields()
            },
        },
    }
    if selection_of(record) != DEFAULT_SELECTION:
        cell["selection"] = record["selection"]
    if record.get("split", "evaluation") != "evaluation":
        cell["split"] = record["split"]
    if record.get("shots_apart_from_seeds") is not None:
        cell["shots_apart_from_seeds"] = record["shots_apart_from_seeds"]
    if budget_of(record):
        cell["budget"] = record["budget"]
    if record.get("tuning"):
        cell["tuning"] = {k: v for k, v in record["tuning"].items() if k != "history"}
    return cell


# --------------------------------------------------------------------------- same configuration


def schema_of(item: dict[str, Any]) -> int:
    """The identity schema of a record or cell (1 for records that predate it)."""
    return int(item.get("schema_version") or 1)


def plugin_ref_of(item: dict[str, Any], kind: str) -> dict[str, Any]:
    """The ``{"name", "params", "version", ...}`` of one plugin of a record or a cell."""
    ref = (item.get("eval") or {}).get("extractor") if kind == "extractor" else item.get(kind)
    return ref if isinstance(ref, dict) else {}


def selection_of(item: dict[str, Any]) -> str:
    """How a record's or a cell's configuration was chosen: ``default``, ``trial``,
    ``tuned-validation``, ... (records of early tuning code hold a table)."""
    selection = item.get("selection") or DEFAULT_SELECTION
    if isinstance(selection, dict):
        selection = selection.get("mode") or selection.get("name") or DEFAULT_SELECTION
    return str(selection)


def budget_of(item: dict[str, Any]) -> str:
    """The named horizon of a record's or a cell's suite part (``adapted``, ``long``); ""
    when it names none. Cells of different budgets are never the same cell."""
    return str(item.get("budget") or "")


def cell_key(item: dict[str, Any]) -> tuple[Any, ...]:
    """Plugin names, shots, seed, split, selection and budget of a record or a cell: a
    tuning trial (validation split) and a default or tuned run on the evaluation set are
    never the same cell, even with equal settings; nor are two named budgets."""
    names = tuple(str(plugin_ref_of(item, kind).get("name")) for kind in KINDS)
    split = item.get("split") or "evaluation"
    return (*names, item.get("shots"), item.get("seed"), split, selection_of(item), budget_of(item))


def _settings(item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The user's choices of a record or a cell, without versions or hashes."""
    is_record = "hparams" in item
    train = (item.get("hparams") or {}).get("train") if is_record else item.get("train")
    evaluation = item.get("eval") or {}
    chosen = {}
    for key in eval_identity_fields():
        # a record stores the KID subset size used next to the one requested
        value = evaluation.get(f"{key}_requested", evaluation.get(key)) if is_record else None
        chosen[key] = value if is_record else evaluation.get(key)
    parts = {kind: dict(plugin_ref_of(item, kind).get("params") or {}) for kind in KINDS}
    parts["train"] = dict(train or {})
    parts["eval"] = {k: v for k, v in chosen.items() if v is not None}
    return parts


def same_configuration(
    a: dict[str, Any], b: dict[str, Any], ignore: frozenset[str] = frozenset()
) -> bool:
    """Whether two records/cells are the same cell up to code versions and data: same
    plugins, shots and seed, and equal parameters and train/eval settings on every key
    both know (a setting added since the older one was made does not count). The
    parameters of the plugin kinds in ``ignore`` are not compared."""
    if cell_key(a) != cell_key(b):
        return False
    sa, sb = _settings(a), _settings(b)
    return all(
        sa[part][k] == sb[part][k]
        for part in sa
        if part not in ignore
        for k in sa[part].keys() & sb[part].keys()
    )


def changed_versions(old: dict[str, Any], new: dict[str, Any]) -> frozenset[str]:
    """The plugin kinds whose version differs between two records/cells (all of them when
    the older one predates recorded versions): their parameters' defaults may differ."""
    if schema_of(old) < 2:
        return frozenset(KINDS)
    return frozenset(
        kind
        for kind in KINDS
        if plugin_ref_of(old, kind).get("version") != plugin_ref_of(new, kind).get("version")
    )


def difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    """What differs between two records/cells of the same configuration: versions, data
    content, extractor weights (one line)."""
    if schema_of(old) < 2:
        return "made before plugin versions were recorded (schema 1)"
    changes = []
    for kind in KINDS:
        a, b = plugin_ref_of(old, kind), plugin_ref_of(new, kind)
        if a.get("version") != b.get("version"):
            changes.append(
                f"{kind} {b.get('name')} version {a.get('version')} → {b.get('version')}"
            )
    for key, label in (("trainer_version", "trainer"), ("protocol_version", "protocol")):
        if old.get(key) != new.get(key) and None not in (old.get(key), new.get(key)):
            changes.append(f"{label} version {old.get(key)} → {new.get(key)}")
    if old.get("dataset_content") != new.get("dataset_content"):
        changes.append(f"dataset {plugin_ref_of(new, 'dataset').get('name')} content changed")
    a, b = plugin_ref_of(old, "extractor"), plugin_ref_of(new, "extractor")
    if a.get("identity") != b.get("identity"):
        changes.append(f"extractor {b.get('name')} weights changed")
    if schema_of(old) != schema_of(new):
        changes.append(f"schema {old.get('schema_version')} → {new.get('schema_version')}")
    return "; ".join(changes) or "made by other code"


def parameter_changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    """``method ewc: weight 5000 → 500, ...`` for the plugin parameters that differ."""
    sa, sb = _settings(old), _settings(new)
    parts = []
    for kind in KINDS:
        keys = sorted(sa[kind].keys() & sb[kind].keys())
        changes = [
            f"{k} {sa[kind][k]!r} → {sb[kind][k]!r}" for k in keys if sa[kind][k] != sb[kind][k]
        ]
        if changes:
            name = plugin_ref_of(new, kind).get("name")
            parts.append(f"{kind} {name} parameters: {', '.join(changes)}")
    return "; ".join(parts)


# --------------------------------------------------------------------------- same evaluation


def evaluation_identity(record: dict[str, Any]) -> dict[str, Any]:
    """What a record's numbers measure: its reference set in the extractor's feature space
    (``reference_key``), the extractor's weights (``extractor_identity``), the number of
    samples and the KID subsets. Two records with equal evaluation identities are
    comparable; nothing else under ``eval`` (batch size, device, timings, cache keys) is."""
    return {k: v for k, v in (record.get("eval") or {}).items() if k in EVAL_IDENTITY}


def protocol_of(record: dict[str, Any]) -> str:
    """``<evaluation hash>-<training hash>``: the leaderboard's ``protocol`` of a record,
    :func:`evaluation_identity` and the training hyper-parameters (for a tuned record, the
    budget only: what tuning searched is left out); ``none`` for methods that do not train.
    Six hex digits each, of json's default-separator form (the committed tables' labels)."""
    train = dict((record.get("hparams") or {}).get("train") or {})
    for key in (record.get("tuning") or {}).get("searched", []):
        train.pop(str(key).removeprefix("train."), None)
    evaluation = digest(evaluation_identity(record), length=6, compact=False)
    return f"{evaluation}-{digest(train, length=6, compact=False) if train else 'none'}"
