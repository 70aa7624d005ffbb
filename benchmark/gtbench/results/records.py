"""The one record writer: one ``record.json`` per cell, written atomically, and readers
that treat a corrupt or truncated record as missing (reported, then re-run)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gtbench.files.atomic import atomic_write_bytes as atomic_write_bytes  # re-exported
from gtbench.files.atomic import atomic_write_text as atomic_write_text  # re-exported
from gtbench.results.timestamps import timestamp_key

RECORD = "record.json"
FAILED_RECORD = "record.failed.json"  # a failed rerun of a cell whose ok record is kept
RUNNING = "running.json"  # present while a cell runs (host, pid): `gtbench status`
TRACEBACK = "traceback.txt"
STATUSES = ("ok", "failed", "diverged")


def runs_dir(results_dir: str | Path) -> Path:
    return Path(results_dir) / "runs"


def run_dir(results_dir: str | Path, run_id: str) -> Path:
    return runs_dir(results_dir) / run_id


def write_record(results_dir: str | Path, record: dict[str, Any]) -> Path:
    """Write a cell's record atomically; returns its path.

    A failure never replaces a good result: when the cell already has an ``ok`` record
    (a ``--force`` rerun), a ``failed``/``diverged`` record is written beside it as
    ``record.failed.json``; an ``ok`` record removes such a leftover."""
    if record.get("status") not in STATUSES:
        raise ValueError(f"record status must be one of {STATUSES}, got {record.get('status')!r}")
    folder = run_dir(results_dir, record["run_id"])
    path = folder / RECORD
    if record["status"] != "ok" and has_ok_record(results_dir, record["run_id"]):
        path = folder / FAILED_RECORD
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    if record["status"] == "ok":
        (folder / FAILED_RECORD).unlink(missing_ok=True)
    return path


def has_ok_record(results_dir: str | Path, run_id: str) -> bool:
    """Whether the cell has a readable record with status ``ok``."""
    try:
        return read_record(run_dir(results_dir, run_id) / RECORD)["status"] == "ok"
    except CorruptRecord:
        return False


class CorruptRecord(Exception):
    """A record.json that does not parse or lacks its required fields."""


def read_record(path: Path) -> dict[str, Any]:
    """Parse a record; raise :class:`CorruptRecord` saying what is wrong."""
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorruptRecord(f"{path}: {error}") from None
    if (
        not isinstance(record, dict)
        or record.get("status") not in STATUSES
        or "run_id" not in record
    ):
        raise CorruptRecord(f"{path}: not a gtbench record (missing status or run_id)")
    return record


def load_record(results_dir: str | Path, run_id: str) -> dict[str, Any] | None:
    """The record of ``run_id``, or None when absent or corrupt (with a warning)."""
    path = run_dir(results_dir, run_id) / RECORD
    if not path.exists():
        return None
    try:
        return read_record(path)
    except CorruptRecord as error:
        warnings.warn(f"corrupt record ignored, the cell will run again: {error}", stacklevel=2)
        return None


def iter_records(results_dir: str | Path) -> Iterator[dict[str, Any]]:
    """Every readable record under ``results_dir/runs`` (corrupt ones are skipped)."""
    root = runs_dir(results_dir)
    if not root.is_dir():
        return
    for path in sorted(root.glob(f"*/{RECORD}")):
        try:
            yield read_record(path)
        except CorruptRecord:
            continue


def find_run(results_dir: str | Path, prefix: str) -> str:
    """The run id starting with ``prefix``; one clear error when none or several match."""
    from gtbench.errors import GtbenchError

    root = runs_dir(results_dir)
    matches = (
        sorted(p.name for p in root.glob(f"{prefix}*") if (p / RECORD).exists())
        if root.is_dir()
        else []
    )
    if not matches:
        raise GtbenchError(f"no run {prefix!r} in {root}")
    if len(matches) > 1:
        shown = ", ".join(matches[:5]) + (" ..." if len(matches) > 5 else "")
        raise GtbenchError(f"run id {prefix!r} is ambiguous: {shown}")
    return matches[0]


# --------------------------------------------------------------------------- staleness
#
# A record is *current* when the plugin, trainer and protocol versions and the extractor
# weights it was made with are the ones installed now, and no newer current record of the
# same configuration supersedes it; otherwise it is *stale*: its numbers are not what this
# code and data produce. ``gtbench run`` reruns the cells of stale records (under new run
# ids: versions and content are part of every run_id) and leaves the old records in
# place; tables and ``gtbench status`` set them apart, except those the last sweep kept
# with ``--keep-stale``.

_KINDS = ("source", "method", "dataset", "extractor")
DEFAULT_SELECTION = "default"  # a configuration run as its plugins define it


def plugin_ref_of(item: dict[str, Any], kind: str) -> dict[str, Any]:
    """The ``{"name", "params", "version", ...}`` of one plugin of a record or a cell."""
    ref = (item.get("eval") or {}).get("extractor") if kind == "extractor" else item.get(kind)
    return ref if isinstance(ref, dict) else {}


class _Installed:
    """Installed plugin versions and extractor identities, looked up once per use."""

    def __init__(self) -> None:
        self._identities: dict[tuple[str, str], str | None] = {}

    @staticmethod
    def version(kind: str, name: str) -> str | None:
        from gtbench.plugin import registry

        try:
            return str(registry.registry(kind).get(name).version)
        except Exception:  # noqa: BLE001 - not installed or broken here: cannot tell
            return None

    def identity(self, ref: dict[str, Any]) -> str | None:
        from gtbench.plugin import registry
        from gtbench.plugin.spec import PluginSpec

        params = json.dumps(ref.get("params", {}), sort_keys=True, default=str)
        key = (str(ref.get("name")), params)
        if key not in self._identities:
            try:
                spec = PluginSpec(key[0], ref.get("params", {}))
                self._identities[key] = registry.extractors().create(spec).identity()
            except Exception:  # noqa: BLE001 - weights missing here: cannot tell
                self._identities[key] = None
        return self._identities[key]


def staleness(record: dict[str, Any], installed: _Installed | None = None) -> str | None:
    """Why ``record`` is stale against the installed code, or None when it is current.

    Compares what the record was made with — plugin versions (source, method, dataset,
    extractor), the trainer version (methods that train), the evaluation protocol version
    and the extractor's identity (its weights hash) — with what is installed. A plugin
    not installed here cannot be judged and does not make a record stale. Dataset content
    is not read (too slow for a table): new content gives new run ids at plan time, and
    the newer record then supersedes this one (:func:`stale_reasons`)."""
    from gtbench.measure.eval_settings import PROTOCOL_VERSION
    from gtbench.train.trainer import TRAINER_VERSION

    installed = installed or _Installed()
    if int(record.get("schema_version") or 1) < 2:
        return "made before plugin versions were recorded (schema 1)"
    reasons = []
    for kind in _KINDS:
        ref = plugin_ref_of(record, kind)
        now = installed.version(kind, str(ref.get("name")))
        if now is not None and str(ref.get("version")) != now:
            reasons.append(f"{kind} {ref.get('name')} version {ref.get('version')} → {now}")
    trainer = record.get("trainer_version")
    if trainer is not None and str(trainer) != str(TRAINER_VERSION):
        reasons.append(f"trainer version {trainer} → {TRAINER_VERSION}")
    if str(record.get("protocol_version")) != str(PROTOCOL_VERSION):
        reasons.append(
            f"evaluation protocol version {record.get('protocol_version')} → {PROTOCOL_VERSION}"
        )
    extractor = plugin_ref_of(record, "extractor")
    if not reasons and extractor.get("identity"):
        now = installed.identity(extractor)
        if now is not None and now != extractor["identity"]:
            reasons.append(f"extractor {extractor.get('name')} weights changed")
    return "; ".join(reasons) or None


def difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    """What differs between two records/cells of the same configuration: versions, data
    content, extractor weights (one line)."""
    if int(old.get("schema_version") or 1) < 2:
        return "made before plugin versions were recorded (schema 1)"
    changes = []
    for kind in _KINDS:
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
    if int(old.get("schema_version") or 1) != int(new.get("schema_version") or 1):
        changes.append(f"schema {old.get('schema_version')} → {new.get('schema_version')}")
    return "; ".join(changes) or "made by other code"


def _settings(item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The user's choices of a record or a cell, without versions or hashes."""
    from gtbench.plan.cells import eval_identity_fields

    is_record = "hparams" in item
    train = (item.get("hparams") or {}).get("train") if is_record else item.get("train")
    evaluation = item.get("eval") or {}
    chosen = {}
    for key in eval_identity_fields():
        # a record stores the KID subset size used next to the one requested
        value = evaluation.get(f"{key}_requested", evaluation.get(key)) if is_record else None
        chosen[key] = value if is_record else evaluation.get(key)
    parts = {kind: dict(plugin_ref_of(item, kind).get("params") or {}) for kind in _KINDS}
    parts["train"] = dict(train or {})
    parts["eval"] = {k: v for k, v in chosen.items() if v is not None}
    return parts


def cell_key(item: dict[str, Any]) -> tuple[Any, ...]:
    """Plugin names, shots, seed, split and selection of a record or a cell: a tuning
    trial (validation split) and a default or tuned run on the evaluation set are never
    the same cell, even with equal settings."""
    names = tuple(str(plugin_ref_of(item, kind).get("name")) for kind in _KINDS)
    split = item.get("split") or "evaluation"
    return (*names, item.get("shots"), item.get("seed"), split, selection_of(item))


def selection_of(item: dict[str, Any]) -> str:
    """How a record's or a cell's configuration was chosen: ``default``, ``trial``,
    ``tuned-validation``, ... (records of early tuning code hold a table)."""
    selection = item.get("selection") or DEFAULT_SELECTION
    if isinstance(selection, dict):
        selection = selection.get("mode") or selection.get("name") or DEFAULT_SELECTION
    return str(selection)


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
    if int(old.get("schema_version") or 1) < 2:
        return frozenset(_KINDS)
    return frozenset(
        kind
        for kind in _KINDS
        if plugin_ref_of(old, kind).get("version") != plugin_ref_of(new, kind).get("version")
    )


def parameter_changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    """``method ewc: weight 5000 → 500, ...`` for the plugin parameters that differ."""
    sa, sb = _settings(old), _settings(new)
    parts = []
    for kind in _KINDS:
        keys = sorted(sa[kind].keys() & sb[kind].keys())
        changes = [
            f"{k} {sa[kind][k]!r} → {sb[kind][k]!r}" for k in keys if sa[kind][k] != sb[kind][k]
        ]
        if changes:
            name = plugin_ref_of(new, kind).get("name")
            parts.append(f"{kind} {name} parameters: {', '.join(changes)}")
    return "; ".join(parts)


def kept_stale(results_dir: str | Path) -> set[str]:
    """Run ids of stale records the last sweep kept with ``--keep-stale``."""
    from gtbench.results.leaderboard import PLAN_JSON

    try:
        plan = json.loads((Path(results_dir) / PLAN_JSON).read_text())
        return {str(run_id) for run_id in plan.get("kept_stale", {})}
    except (OSError, ValueError, AttributeError):
        return set()


def _finished(record: dict[str, Any]) -> float:
    return timestamp_key(record.get("finished_at"))


def stale_reasons(
    results_dir: str | Path, records: list[dict[str, Any]] | None = None
) -> dict[str, str]:
    """``{run_id: why}`` for every stale record of a results folder, for tables and
    ``gtbench status`` to set apart (records kept with ``--keep-stale`` are not listed).

    Stale: made with other plugin/trainer/protocol versions or extractor weights than
    those installed (:func:`staleness`), or superseded by a newer current ``ok`` record
    of the same configuration (e.g. after the dataset's content changed)."""
    records = list(iter_records(results_dir)) if records is None else records
    installed = _Installed()
    reasons = {}
    for record in records:
        reason = staleness(record, installed)
        if reason:
            reasons[record["run_id"]] = reason
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(cell_key(record), []).append(record)
    for group in groups.values():
        current = [r for r in group if r["status"] == "ok" and r["run_id"] not in reasons]
        for old in group:
            if old["run_id"] in reasons:
                continue
            for new in current:
                if (
                    new["run_id"] != old["run_id"]
                    and timestamp_key(new.get("finished_at"))
                    > timestamp_key(old.get("finished_at"))
                    and same_configuration(old, new)
                ):
                    reasons[old["run_id"]] = (
                        f"superseded by {new['run_id']} ({difference(old, new)})"
                    )
                    break
    for run_id in kept_stale(results_dir):
        reasons.pop(run_id, None)
    return reasons
