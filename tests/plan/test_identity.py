"""gtbench.plan.identity: every "same run / configuration / evaluation" question in one
module — a record's run id recomputes from the cell rebuilt from it (trial cells too),
records and cells of one configuration are matched whatever their versions, and the
leaderboard's protocol label depends on the evaluation identity alone."""

from __future__ import annotations

import copy

from gtbench.launch.runner import run_cell
from gtbench.plan import identity
from gtbench.results.records import load_record
from tests.plugins.launchers.common import debug_plan


def _trial(cell: dict, **fields: object) -> dict:
    """``cell`` as ``gtbench tune`` makes a trial of it: its fields, then a new run id
    (the debug target has no validation split: a trial run here evaluates on its
    evaluation set)."""
    trial = copy.deepcopy(cell)
    trial.update(selection="trial", shots_apart_from_seeds=[1], **fields)
    trial["run_id"] = identity.run_id_of(trial)
    return trial


def test_run_id_recomputes_from_the_record_of_a_cell_and_of_a_trial(tmp_path):
    cell = next(c for c in debug_plan().cells if c["method"]["name"] == "finetune")
    for planned in (cell, _trial(cell)):
        run_cell(planned, tmp_path)
        record = load_record(tmp_path, planned["run_id"])
        assert record is not None and record["status"] == "ok", record
        rebuilt = identity.cell_of(record)
        assert identity.run_id_of(rebuilt) == planned["run_id"]
        assert identity.same_configuration(record, planned)
        assert identity.cell_key(record) == identity.cell_key(planned)


def test_the_trial_history_and_the_curve_are_not_identity():
    cell = debug_plan().cells[-1]
    changed = {**cell, "tuning_history": [{"trial": 0}], "curve": {"points": 3}}
    assert identity.run_id_of(changed) == identity.run_id_of(cell) == cell["run_id"]


def test_a_trial_and_a_default_run_are_never_the_same_configuration():
    cell = debug_plan().cells[-1]
    assert not identity.same_configuration(cell, _trial(cell, split="validation"))


def test_same_configuration_across_versions_names_what_changed():
    cell = debug_plan().cells[-1]
    newer = copy.deepcopy(cell)
    newer["method"]["version"] = "99"
    newer["run_id"] = identity.run_id_of(newer)
    assert newer["run_id"] != cell["run_id"]
    assert identity.same_configuration(cell, newer)
    assert identity.changed_versions(cell, newer) == {"method"}
    assert "version" in identity.difference(cell, newer)


def test_protocol_follows_the_evaluation_identity_not_other_eval_fields():
    record = {
        "eval": {
            "reference_key": "r",
            "extractor_identity": "x",
            "n_samples": 10,
            "kid_subset_size": 5,
            "kid_subsets": 2,
            "batch_size": 4,
            "reference_cache_key": "c1",
        },
        "hparams": {"train": {"iters": 3}},
    }
    label = identity.protocol_of(record)
    other_cache = copy.deepcopy(record)
    other_cache["eval"].update(reference_cache_key="c2", batch_size=64, device="cuda")
    assert identity.protocol_of(other_cache) == label
    other_reference = copy.deepcopy(record)
    other_reference["eval"]["reference_key"] = "r2"
    assert identity.protocol_of(other_reference) != label
    assert identity.protocol_of({"eval": record["eval"], "hparams": {}}).endswith("-none")
