"""The face pair of the `full` suite (digiface-dcgan64 → lfw-faces): planned with every
method that can run on a generator-only source, judged in grey against the grey faces,
and ranked by KID because 70 evaluation faces cannot make FID valid."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from gtbench.errors import MissingAssetError
from tests.helpers import gtbench

SOURCE, TARGET = "digiface-dcgan64", "lfw-faces"
NEEDS_D = {"freeze-d", "ewc", "adafm"}


@pytest.fixture(scope="module")
def digiface() -> None:
    from gtbench.files.assets import fetch
    from gtbench_plugins.sources.digiface import WEIGHTS

    try:
        fetch(WEIGHTS)
    except MissingAssetError as error:  # no cache and no registry: nothing to check
        pytest.skip(str(error))


def test_full_suite_plans_the_face_pair_judged_in_grey():
    from gtbench.launch.runner import MatchedTarget
    from gtbench.plan.cells import plan_suite
    from gtbench.plan.identity import matched_content_hash
    from gtbench.plan.suite import load_suite
    from gtbench.plugin import registry

    suite = load_suite("full")
    suite.methods = list(registry.methods().names())
    plan = plan_suite(suite)
    faces = [c for c in plan.cells if c["dataset"]["name"] == TARGET]
    methods = {c["method"]["name"] for c in faces}
    assert methods == set(registry.methods().names()) - NEEDS_D
    assert {c["source"]["name"] for c in faces} == {SOURCE}
    assert {c["seed"] for c in faces} == set(suite.seeds) and {c["shots"] for c in faces} == {10}
    skipped = {s.method for s in plan.skipped if s.dataset == TARGET}
    assert skipped == NEEDS_D
    assert all("pretrained discriminator" in s.reason for s in plan.skipped)
    lfw = registry.datasets().create(TARGET)
    assert lfw.info.channels == 1 and len(lfw.evaluation_images()) == 70
    target = MatchedTarget(lfw, 64, 3)
    assert {c["dataset_content"] for c in faces} == {target.content_hash()}
    assert target.content_hash() != matched_content_hash(lfw.content_hash(), 64, 3)
    assert all(c["train"]["iters"] > 0 for c in faces if c["train"])


def test_a_face_cell_is_judged_in_grey_and_ranked_by_kid(tmp_path, digiface):
    result = gtbench(
        "run", "--sources", SOURCE, "--datasets", TARGET, "--methods", "source-only,finetune",
        "--seeds", "0,1", "--iters", "2", "--batch-size", "4", "--n-samples", "80",
        "--extractor", "shapes-cnn", "--no-keep-weights", results=tmp_path,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    records = [json.loads(p.read_text()) for p in tmp_path.glob("runs/*/record.json")]
    assert len(records) == 4 and {r["status"] for r in records} == {"ok"}
    for record in records:
        evaluation = record["eval"]
        assert evaluation["generated_shape"] == [3, 64, 64]
        assert evaluation["evaluated_shape"] == [1, 64, 64]
        assert "grey" in evaluation["evaluated_in"]
        assert evaluation["n_reference"] == 70 and evaluation["kid_subset_size"] == 70
        assert record["metrics"]["fid_valid"] is False
        assert record["shot_eval_overlap"] == 0
    board = pd.read_csv(tmp_path / "leaderboard.csv")
    assert set(board["ranked_by"]) == {"kid"} and not board["fid_valid"].any()
