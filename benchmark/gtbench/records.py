"""The one record writer: one ``record.json`` per cell, written atomically, and readers
that treat a corrupt or truncated record as missing (reported, then re-run)."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

RECORD = "record.json"
TRACEBACK = "traceback.txt"
STATUSES = ("ok", "failed", "diverged")


def runs_dir(results_dir: str | Path) -> Path:
    return Path(results_dir) / "runs"


def run_dir(results_dir: str | Path, run_id: str) -> Path:
    return runs_dir(results_dir) / run_id


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a unique temporary file beside ``path``, then rename it over.

    Readers see the old file or the new one, never a partial one; two writers racing
    each leave a complete file (the last rename wins)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are shared
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once, at import: os.umask is process-wide and racy later


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_record(results_dir: str | Path, record: dict[str, Any]) -> Path:
    """Write a cell's record atomically; returns its path."""
    if record.get("status") not in STATUSES:
        raise ValueError(f"record status must be one of {STATUSES}, got {record.get('status')!r}")
    path = run_dir(results_dir, record["run_id"]) / RECORD
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
    return path


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
