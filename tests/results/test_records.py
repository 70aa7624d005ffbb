"""gtbench.results.records' typed record: built in one place (new_record, failed_record),
and records written by older code read in the current shape."""

from __future__ import annotations

import json

from gtbench.plan import identity
from gtbench.results.records import (
    RECORD,
    failed_record,
    load_record,
    new_record,
    read_record,
    run_dir,
    write_record,
)
from tests.plugins.launchers.common import debug_plan


def test_a_stand_in_record_keeps_the_cells_identity_split_and_selection(tmp_path):
    cell = dict(debug_plan().cells[-1])
    cell.update(selection="trial", split="validation", shots_apart_from_seeds=[0])
    cell["run_id"] = identity.run_id_of(cell)
    record = failed_record(cell, "job killed\nby the scheduler")
    assert record["status"] == "failed" and record["error"] == "job killed"
    assert record["schema_version"] == identity.SCHEMA_VERSION
    assert (record["selection"], record["split"]) == ("trial", "validation")
    write_record(tmp_path, record)
    read = load_record(tmp_path, cell["run_id"])
    assert identity.run_id_of(identity.cell_of(read)) == cell["run_id"]


def test_new_record_copies_the_cell_and_starts_failed():
    cell = debug_plan().cells[-1]
    record = new_record(cell)
    assert record["status"] == "failed" and record["metrics"] == {}
    assert record["hparams"] == {"method": cell["method"]["params"], "train": cell["train"]}
    assert record["eval"] == cell["eval"] and record["eval"] is not cell["eval"]
    assert "tuning" not in record and record["selection"] == "default"


def test_an_old_record_reads_with_the_fields_every_reader_assumed(tmp_path):
    old = {"run_id": "0123abcd", "status": "failed", "source": {"name": "debug"}}
    path = run_dir(tmp_path, old["run_id"]) / RECORD
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(old))
    record = read_record(path)
    assert record["schema_version"] == 1 and record["error"] is None
    assert record["metrics"] == record["eval"] == record["hparams"] == record["timings"] == {}
    assert (record["selection"], record["split"]) == ("default", "evaluation")
    assert json.loads(path.read_text()) == old  # nothing written back
