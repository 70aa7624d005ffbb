"""Records: the typed :class:`Record` of one cell, built in one place (:func:`new_record`,
:func:`failed_record`), the one writer (one ``record.json`` per cell, written atomically),
the reader that brings older records to the current shape (:func:`upgrade_record`) and
treats a corrupt or truncated record as missing (reported, then re-run), and staleness."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from gtbench.errors import GtbenchError
from gtbench.files.atomic import atomic_write_bytes as atomic_write_bytes  # re-exported
from gtbench.files.atomic import atomic_write_text as atomic_write_text  # re-exported
from gtbench.measure.eval_settings import PROTOCOL_VERSION
from gtbench.plan import identity
from gtbench.plugin import registry
from gtbench.plugin.spec import PluginSpec
from gtbench.results.timestamps import timestamp_key

if TYPE_CHECKING:
    from gtbench.plan.cells import Cell, PluginRef

RECORD = "record.json"
PLAN_JSON = "sweep.json"  # the last sweep's plan (cells, skipped, kept stale records)
FAILED_RECORD = "record.failed.json"  # a failed rerun of a cell whose ok record is kept
RUNNING = "running.json"  # present while a cell runs (host, pid): `gtbench status`
TRACEBACK = "traceback.txt"
STATUSES = ("ok", "failed", "diverged")


class _RecordRequired(TypedDict):
    schema_version: int  # the identity schema of its cell (identity.SCHEMA_VERSION)
    run_id: str
    status: str  # one of STATUSES
    error: str | None
    source: PluginRef
    method: PluginRef
    dataset: PluginRef
    shots: int
    seed: int
    hparams: dict[str, Any]  # {"method": params, "train": TrainConfig fields}
    eval: dict[str, Any]  # the cell's eval settings and extractor, then what evaluate used
    metrics: dict[str, Any]  # fid, kid_mean, kid_std (over KID subsets), ... and fid_valid
    timings: dict[str, float]


class Record(_RecordRequired, total=False):
    """One cell's ``record.json`` (docs/results.md lists every field). Required fields are
    there in every record :func:`read_record` returns, older ones included
    (:func:`upgrade_record`); the others are there when the run got that far."""

    dataset_content: str | None
    trainer_version: str | None
    protocol_version: str | None
    selection: str | dict[str, Any]  # a table in records of early tuning code
    split: str
    budget: str  # the suite's named horizon ("adapted", "long"); absent: none
    tuning: dict[str, Any]
    shots_apart_from_seeds: list[int]
    started_at: str
    finished_at: str
    gtbench_version: str
    plugins: dict[str, dict[str, str]]
    environment: dict[str, Any]
    device: str
    traceback: str
    train_indices: list[int]
    shot_sha256: list[str]
    shot_eval_overlap: int
    source_notes: dict[str, Any]
    discriminator: str
    g_steps: int
    d_steps: int
    warmup_steps: int
    images_seen: int
    unequal_budget: str
    train_log: str
    method_metrics: dict[str, Any]
    ema_batchnorm: str
    curve: list[dict[str, Any]]
    curve_note: str
    curve_best_by: str
    samples: str
    weights: dict[str, Any] | None
    # the cell's own peak memory: peak_rss_mb, peak_rss_measure, [cuda_peak_mb,
    # cuda_reserved_peak_mb] (gtbench.launch.resources); absent in older records
    memory: dict[str, Any]


def new_record(cell: Cell) -> Record:
    """The record of ``cell`` before it runs (status ``failed`` until it succeeds): its
    identity and settings copied from the cell, empty metrics and timings."""
    record: Record = {
        "schema_version": cell.get("schema_version", identity.SCHEMA_VERSION),
        "run_id": cell["run_id"],
        "status": "failed",
        "error": None,
        "source": cell["source"],
        "method": cell["method"],
        "dataset": cell["dataset"],
        "shots": cell["shots"],
        "seed": cell["seed"],
        "dataset_content": cell.get("dataset_content"),
        "trainer_version": cell.get("trainer_version"),
        "protocol_version": cell.get("protocol_version"),
        "selection": cell.get("selection", identity.DEFAULT_SELECTION),
        "split": cell.get("split", "evaluation"),
        "hparams": {"method": cell["method"]["params"], "train": cell["train"]},
        "eval": dict(cell["eval"]),
        "metrics": {},
        "timings": {},
    }
    if cell.get("budget"):  # the suite's named horizon ("adapted", "long")
        record["budget"] = cell["budget"]
    if cell.get("shots_apart_from_seeds") is not None:
        record["shots_apart_from_seeds"] = list(cell["shots_apart_from_seeds"])
    if cell.get("tuning"):  # how the configuration was chosen, with every trial
        record["tuning"] = {**cell["tuning"], "history": cell.get("tuning_history", [])}
    return record


def failed_record(cell: Cell, error: str) -> Record:
    """A ``failed`` record for a cell whose job ended without writing one (a launcher's
    stand-in: killed, out of memory, never started); ``error``'s first line is kept."""
    record = new_record(cell)
    record["error"] = error.splitlines()[0][:500] if error else "job ended without a record"
    return record


def runs_dir(results_dir: str | Path) -> Path:
    return Path(results_dir) / "runs"


def run_dir(results_dir: str | Path, run_id: str) -> Path:
    return runs_dir(results_dir) / run_id


def write_record(results_dir: str | Path, record: Record) -> Path:
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


def upgrade_record(raw: dict[str, Any]) -> Record:
    """A record as :class:`Record` whatever code wrote it: fields that older records (or a
    launcher's stand-in record of earlier versions) lack get the value every reader has
    assumed for them — ``schema_version`` 1 (before plugin versions were recorded), no
    error, empty metrics, timings, settings and hyper-parameters, the ``default``
    selection and the ``evaluation`` split. A new copy; nothing is written back."""
    record = dict(raw)
    record.setdefault("schema_version", 1)
    record.setdefault("error", None)
    for key in ("hparams", "eval", "metrics", "timings"):
        if not isinstance(record.get(key), dict):
            record[key] = {}
    record.setdefault("selection", identity.DEFAULT_SELECTION)
    record.setdefault("split", "evaluation")
    return record  # type: ignore[return-value]


def read_record(path: Path) -> Record:
    """Parse a record and bring it to the current shape (:func:`upgrade_record`); raise
    :class:`CorruptRecord` saying what is wrong."""
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
    return upgrade_record(record)


def load_record(results_dir: str | Path, run_id: str) -> Record | None:
    """The record of ``run_id``, or None when absent or corrupt (with a warning)."""
    path = run_dir(results_dir, run_id) / RECORD
    if not path.exists():
        return None
    try:
        return read_record(path)
    except CorruptRecord as error:
        warnings.warn(f"corrupt record ignored, the cell will run again: {error}", stacklevel=2)
        return None


def iter_records(results_dir: str | Path) -> Iterator[Record]:
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


class _Installed:
    """Installed plugin versions and extractor identities, looked up once per use."""

    def __init__(self) -> None:
        self._identities: dict[tuple[str, str], str | None] = {}

    @staticmethod
    def version(kind: str, name: str) -> str | None:
        try:
            return str(registry.registry(kind).get(name).version)
        except Exception:  # noqa: BLE001 - not installed or broken here: cannot tell
            return None

    def identity(self, ref: dict[str, Any]) -> str | None:
        """The installed extractor's weights identity for ``ref``'s name and parameters."""
        key = (str(ref.get("name")), identity.canonical_json(ref.get("params", {})))
        if key not in self._identities:
            try:
                spec = PluginSpec(key[0], ref.get("params", {}))
                extractor = registry.extractors().create(spec)
                self._identities[key] = identity.extractor_ref(extractor)["identity"]
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
    from gtbench.train.trainer import TRAINER_VERSION  # torch: only to judge staleness

    installed = installed or _Installed()
    if identity.schema_of(record) < 2:
        return "made before plugin versions were recorded (schema 1)"
    reasons = []
    for kind in identity.KINDS:
        ref = identity.plugin_ref_of(record, kind)
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
    extractor = identity.plugin_ref_of(record, "extractor")
    if not reasons and extractor.get("identity"):
        now = installed.identity(extractor)
        if now is not None and now != extractor["identity"]:
            reasons.append(f"extractor {extractor.get('name')} weights changed")
    return "; ".join(reasons) or None


def kept_stale(results_dir: str | Path) -> set[str]:
    """Run ids of stale records the last sweep kept with ``--keep-stale``."""
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
        groups.setdefault(identity.cell_key(record), []).append(record)
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
                    and identity.same_configuration(old, new)
                ):
                    why = identity.difference(old, new)
                    reasons[old["run_id"]] = f"superseded by {new['run_id']} ({why})"
                    break
    for run_id in kept_stale(results_dir):
        reasons.pop(run_id, None)
    return reasons
