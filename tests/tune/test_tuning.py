"""Equal tuning: validation splits, search spaces, seeded trials as ordinary cells,
selection on validation only, and the tuned cells with their trial history."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from gtbench.api import Dataset, Method, Parameter
from gtbench.errors import UsageError
from gtbench.measure.evaluation import PROTOCOL_VERSION
from gtbench.plan.cells import make_plugin, plan_suite, plugin_ref
from gtbench.plan.suite import load_suite, suite_from_mapping
from gtbench.plugin import registry
from gtbench.plugin.images import image_sha256s
from gtbench.plugin.search import IntUniform, LogUniform
from gtbench.results.records import load_record, write_record
from gtbench.tune.tuning import (
    TRAINER_SEARCH,
    TuneSettings,
    final_plan,
    plan_trials,
    search_space,
    select,
    tune_settings,
    validation_problem,
)
from tests.helpers import gtbench

DEBUG_VAL = "debug:validation=40"


class Probe(Method):
    """Plain fine-tuning with declared spaces: the tests do not depend on how the built-in
    methods' spaces evolve."""

    parameters = {
        "blocks": Parameter(3, "an int strength", search=IntUniform(-4, -2)),
        "weight": Parameter(0.1, "a float strength", search=LogUniform(0.01, 1.0)),
        "mode": Parameter("a", "not searched"),
    }


@pytest.fixture(autouse=True)
def _probe_method():
    registry.methods().register("probe", Probe)
    yield
    registry.reset()


TINY = ["--iters", "2", "--batch-size", "4", "--n-samples", "40", "--trial-n-samples", "30"]


def _debug_suite(methods: list[str], **tune: object):
    suite = load_suite("debug")
    suite.override(methods=methods, datasets=[DEBUG_VAL])
    suite.override("train", iters=2, batch_size=4)
    suite.override("eval", n_samples=40, kid_subset_size=20)
    return suite, tune_settings({"trials": 3, "eval": {"n_samples": 30}, **tune})


# --------------------------------------------------------------------------- splits


def _check_three_way(dataset, n_validation: int) -> None:
    images = dataset.images()
    validation = dataset.validation_indices()
    pool = dataset.shot_pool()
    assert validation is not None and 0 < len(validation) <= n_validation
    assert not set(validation) & set(pool)
    hashes = {
        "pool": set(image_sha256s(images[pool])),
        "validation": set(image_sha256s(images[validation])),
        "evaluation": set(image_sha256s(dataset.evaluation_images())),
    }
    assert not hashes["validation"] & hashes["pool"]
    assert not hashes["validation"] & hashes["evaluation"]
    assert not hashes["pool"] & hashes["evaluation"]
    n_eval = len(dataset.evaluation_images())
    assert n_eval <= dataset.info.size - dataset.info.shot_pool - len(validation)
    assert validation_problem(dataset) is None


def test_debug_dataset_three_disjoint_parts() -> None:
    dataset = make_plugin("dataset", plugin_ref("dataset", DEBUG_VAL))
    _check_three_way(dataset, 40)
    assert len(dataset.evaluation_images()) == 200 - 40 - 40  # procedural discs: no copies


def test_digits_three_disjoint_parts() -> None:
    dataset = make_plugin("dataset", plugin_ref("dataset", "digits"))
    assert dataset.info.validation == 300
    _check_three_way(dataset, 300)


def test_animals_cat_three_disjoint_parts_despite_duplicate_silhouettes() -> None:
    dataset = make_plugin("dataset", plugin_ref("dataset", "animals-cat"))
    assert (dataset.info.shot_pool, dataset.info.validation) == (100, 200)
    _check_three_way(dataset, 200)
    assert 690 <= len(dataset.evaluation_images()) <= 700


def test_no_validation_split_is_refused_in_one_line(tmp_path: Path) -> None:
    result = gtbench("tune", "--suite", "debug", "--datasets", "debug", results=tmp_path)
    assert result.exit_code == 2
    message = result.output.strip().splitlines()[-1]
    assert "cannot tune on debug" in message and "no validation split" in message
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_folder_with_separate_evaluation_set_is_refused(tmp_path: Path) -> None:
    from PIL import Image

    for folder, n in (("train", 10), ("eval", 6)):
        (tmp_path / folder).mkdir()
        for i in range(n):
            Image.new("RGB", (8, 8), (20 * i, 10 * n, 50)).save(tmp_path / folder / f"{i}.png")
    spec = f"folder:path={tmp_path / 'train'},eval_path={tmp_path / 'eval'},res=16"
    result = gtbench(
        "tune", "--suite", "debug", "--datasets", spec, "--dry-run", results=tmp_path / "r"
    )
    assert result.exit_code == 2
    assert "no validation split" in result.output.strip().splitlines()[-1]


# --------------------------------------------------------------------------- spaces


def test_search_space_declared_pinned_overridden() -> None:
    space, fixed = search_space("probe", {}, True)
    assert space == {
        "blocks": IntUniform(-4, -2),
        "weight": LogUniform(0.01, 1.0),
        **{f"train.{k}": v for k, v in TRAINER_SEARCH.items()},
    }
    assert fixed == {}
    # a parameter given in the spec, or a [train] setting, is pinned: never searched
    space, _ = search_space("probe", {"blocks": "2"}, True, pinned_train={"lr_d": 1e-3})
    assert set(space) == {"weight", "train.lr_g"}
    # the suite replaces a space, or fixes a value
    space, fixed = search_space(
        "probe", {}, True, {"blocks": "int-uniform(1, 2)", "train.lr_g": 3e-4, "weight": 0.5}
    )
    assert space["blocks"] == IntUniform(1, 2) and "train.lr_g" not in space
    assert fixed == {"train.lr_g": 3e-4, "weight": 0.5} and "weight" not in space
    # methods that do not train search nothing
    assert search_space("source-only", {}, False) == ({}, {})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"train.iters": "int-uniform(1, 9)"}, "equal budget"),
        ({"train.batch_size": 4}, "equal budget"),
        ({"nope": 1}, "has no parameter 'nope'"),
        ({"train.nope": 1}, "not a trainer setting"),
        ({"blocks": "normal(0, 1)"}, "not a search distribution"),
    ],
)
def test_bad_overrides_are_usage_errors(override: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        search_space("probe", {}, True, override)


def test_tune_table_is_checked_when_the_suite_loads() -> None:
    with pytest.raises(UsageError, match="unknown key 'trails'"):
        suite_from_mapping({"tune": {"trails": 3}}, "suite x")
    with pytest.raises(UsageError, match="trials must be a positive integer"):
        suite_from_mapping({"tune": {"trials": 0}}, "suite x")
    settings = tune_settings(load_suite("tune").tune)
    assert settings.trials >= 2 and settings.select_on == "validation"


def test_list_shows_search_spaces() -> None:
    result = gtbench("list", "method", "--json")
    assert result.exit_code == 0
    plugins = {p["name"]: p for p in json.loads(result.output)["plugins"]["method"]}
    assert plugins["probe"]["parameters"]["blocks"]["search"] == "int-uniform(-4, -2)"
    assert plugins["probe"]["parameters"]["weight"]["search"] == "log-uniform(0.01, 1)"
    assert plugins["probe"]["parameters"]["mode"]["search"] is None


# --------------------------------------------------------------------------- trials


def test_every_method_gets_the_same_seeded_trials_as_validation_cells() -> None:
    suite, settings = _debug_suite(["finetune", "probe", "source-only"])
    plan = plan_trials(suite, settings)
    by_method = {key[1]: trials for key, trials in plan.targets.items()}
    assert [len(by_method[m]) for m in ("finetune", "probe")] == [3, 3]
    assert len(by_method["source-only"]) == 1  # nothing to tune
    finetune = by_method["finetune"]
    assert finetune[0].values == {} and "lr_g" not in finetune[0].train  # trial 0: defaults
    assert set(finetune[1].values) == {"train.lr_g", "train.lr_d"}
    assert finetune[1].values != finetune[2].values
    lr = finetune[1].values["train.lr_g"]
    assert LogUniform(5e-5, 8e-4).low <= lr <= 8e-4
    probe = by_method["probe"]
    assert probe[0].method == {} and probe[0].values == {}
    for trial in probe[1:]:  # typed like the defaults; 4 significant digits for floats
        assert isinstance(trial.values["blocks"], int) and -4 <= trial.values["blocks"] <= -2
        assert 0.01 <= trial.values["weight"] <= 1.0 and trial.method["weight"] == float(
            f"{trial.values['weight']:.4g}"
        )
    for cell in plan.cells.cells:
        assert cell["split"] == "validation" and cell["selection"] == "trial"
        assert cell["eval"]["n_samples"] == 30 and cell["train"].get("iters", 2) == 2
    assert len(plan.cells.cells) == 3 + 3 + 1
    # the same plan twice: the same cells (resume works); another seed: other draws
    again = plan_trials(suite, settings)
    assert [c["run_id"] for c in again.cells.cells] == [c["run_id"] for c in plan.cells.cells]
    other = plan_trials(suite, dataclasses.replace(settings, seed=1))
    assert {c["run_id"] for c in other.cells.cells} & {c["run_id"] for c in plan.cells.cells}
    assert {c["run_id"] for c in other.cells.cells} != {c["run_id"] for c in plan.cells.cells}
    # trial cells never share a run_id with the suite's own cells
    default_ids = {c["run_id"] for c in plan_suite(suite).cells}
    assert not default_ids & {c["run_id"] for c in plan.cells.cells}


def _fake_record(results: Path, run_id: str, cell: dict, fid: float, kid: float, ok=True):
    record = {
        "schema_version": cell["schema_version"],
        "run_id": run_id,
        "status": "ok" if ok else "failed",
        "error": None if ok else "boom",
        "source": cell["source"],
        "method": cell["method"],
        "dataset": cell["dataset"],
        "shots": cell["shots"],
        "seed": cell["seed"],
        "eval": {**cell["eval"], "n_reference": 40, "feature_dim": 16},
        "metrics": {"fid": fid, "kid_mean": kid} if ok else {},
    }
    write_record(results, record)


def test_selection_uses_the_lowest_validation_score_and_skips_failed_trials(tmp_path) -> None:
    suite, settings = _debug_suite(["finetune"], seeds=[1000, 1001])
    plan = plan_trials(suite, settings)
    ((key, trials),) = plan.targets.items()
    cells = {c["run_id"]: c for c in plan.cells.cells}
    scores = {0: (5.0, 4.0), 1: (1.0, 9.0), 2: (3.0, 3.0)}  # FID per seed
    for trial in trials:
        for seed, run_id in enumerate(trial.run_ids):
            fid = scores[trial.index][seed]
            _fake_record(
                tmp_path, run_id, cells[run_id], fid, fid / 100, ok=trial.index != 1 or seed == 0
            )
    (selection,) = select(plan, str(tmp_path)).values()
    # trial 1 has the lowest single FID but a failed seed: it is out; trial 2 wins on mean
    assert selection.metric == "fid" and selection.trial.index == 2
    assert [h["score"] for h in selection.history][0] == 4.5
    assert selection.history[1]["statuses"] == ["ok", "failed"]
    # FID not valid for the validation size: KID decides
    kid = {0: 0.1, 1: 0.05, 2: 0.2}  # trial 1 would win on KID, but it failed a seed
    for trial in trials:
        for run_id in trial.run_ids:
            record = load_record(tmp_path, run_id)
            record["eval"]["feature_dim"] = 64  # >= the 40 validation images
            if record["status"] == "ok":
                record["metrics"]["kid_mean"] = kid[trial.index]
            write_record(tmp_path, record)
    (selection,) = select(plan, str(tmp_path)).values()
    assert selection.metric == "kid" and selection.trial.index == 0

    final = final_plan(plan, {key: selection})
    assert len(final.cells) == len(suite.seeds)
    for cell in final.cells:
        assert cell["selection"] == "tuned-validation" and "split" not in cell
        assert cell["eval"]["n_samples"] == 40  # the suite's evaluation, not the trials'
        assert cell["tuning"]["trial_run_ids"] == sorted(c for t in trials for c in t.run_ids)
        assert len(cell["tuning_history"]) == 3
        assert cell["tuning"]["searched"] == ["train.lr_d", "train.lr_g"]
    # same configuration as the default cell, but its own run (never averaged with it)
    assert not {c["run_id"] for c in final.cells} & {c["run_id"] for c in plan_suite(suite).cells}


def test_select_on_evaluation_is_labelled_so() -> None:
    suite, settings = _debug_suite(["finetune"], select_on="evaluation")
    plan = plan_trials(suite, settings)
    assert all("split" not in c for c in plan.cells.cells)
    assert settings.label == "tuned-evaluation"


def _evaluated_hashes(dataset, shots: int, seeds) -> set[str]:
    return {h for s in seeds for h in dataset.shot_sha256s(dataset.split(shots, s))}


def test_trial_shots_are_disjoint_from_every_evaluation_seeds_shots() -> None:
    suite, settings = _debug_suite(["finetune"])
    suite.override(seeds=[0, 1, 2])
    plan = plan_trials(suite, dataclasses.replace(settings, seeds=[1000, 1001]))
    dataset = make_plugin("dataset", plugin_ref("dataset", DEBUG_VAL))
    evaluated = _evaluated_hashes(dataset, 10, [0, 1, 2])
    ((_, per_seed),) = plan.trial_shots.items()
    assert set(per_seed) == {"1000", "1001"}
    for seed, hashes in per_seed.items():
        assert len(set(hashes)) == 10 and not set(hashes) & evaluated
        split = dataset.split_apart(10, int(seed), [0, 1, 2])
        assert dataset.shot_sha256s(split) == hashes  # what the runner draws
    for cell in plan.cells.cells:
        assert cell["shots_apart_from_seeds"] == [0, 1, 2]
    # without drawing apart, seed 1000's shots would share images with seeds 0-2
    assert set(dataset.shot_sha256s(dataset.split(10, 1000))) & evaluated


def test_split_apart_is_by_content_and_refuses_an_exhausted_pool() -> None:
    from gtbench.api import DatasetInfo

    class Copies(Dataset):
        """Every image twice in the shot pool: index-disjoint is not content-disjoint."""

        @property
        def info(self) -> DatasetInfo:
            return DatasetInfo(16, 3, 80, 40, 10)

        def images(self):
            half = make_plugin("dataset", plugin_ref("dataset", "debug:size=40")).images()
            return torch.cat([half, half])

        def shot_pool(self) -> list[int]:
            return list(range(20)) + list(range(40, 60))

    dataset = Copies()
    evaluated = _evaluated_hashes(dataset, 5, [0, 1])
    split = dataset.split_apart(5, 1000, [0, 1])
    assert not set(dataset.shot_sha256s(split)) & evaluated
    with pytest.raises(ValueError, match="cannot draw 10 trial shots apart"):
        dataset.split_apart(10, 1000, list(range(8)))  # 80 shots cover the 20 contents


def test_tune_refuses_trial_seeds_that_are_evaluation_seeds_in_one_line() -> None:
    suite, settings = _debug_suite(["finetune"], seeds=[0])
    with pytest.raises(UsageError, match=r"trial seeds \[0\] are also evaluation seeds") as info:
        plan_trials(suite, settings)
    assert "\n" not in str(info.value)
    # a pool too small to draw apart: one line too
    suite, settings = _debug_suite(["finetune"])
    suite.override(datasets=["debug:validation=40,pool=15"])
    with pytest.raises(UsageError, match="cannot draw 10 trial shots apart") as info:
        plan_trials(suite, settings)
    assert "\n" not in str(info.value)


def test_tune_cli_refuses_an_overlap_in_one_line(tmp_path: Path) -> None:
    args = ["tune", "--suite", "debug", "--datasets", DEBUG_VAL, "--methods", "finetune"]
    result = gtbench(*args, "--trial-seeds", "0", *TINY, results=tmp_path)
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "also evaluation seeds" in lines[0], result.output
    assert not list(tmp_path.glob("runs/*"))


# --------------------------------------------------------------------------- end to end


def _records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(results.glob("runs/*/record.json"))]


def test_tune_end_to_end_on_the_debug_pair(tmp_path: Path) -> None:
    args = ["tune", "--suite", "debug", "--datasets", DEBUG_VAL, "--methods", "finetune"]
    result = gtbench(*args, "--trials", "2", *TINY, results=tmp_path)
    assert result.exit_code == 0, result.output
    assert "default vs tuned" in result.output
    records = _records(tmp_path)
    trials = [r for r in records if r["selection"] == "trial"]
    tuned = [r for r in records if r["selection"] == "tuned-validation"]
    default = [r for r in records if r["selection"] == "default"]
    assert (len(trials), len(tuned), len(default)) == (2, 1, 1)
    for record in trials:  # measured on the 40 validation discs, never the evaluation set
        assert record["split"] == "validation" and record["eval"]["n_reference"] == 40
    for record in tuned + default:
        assert record["split"] == "evaluation" and record["eval"]["n_reference"] == 120
        assert record["eval"]["reference_key"] not in {t["eval"]["reference_key"] for t in trials}
    history = tuned[0]["tuning"]["history"]
    # the record names the trial shots by content; none is a shot of an evaluated seed
    trial_shots = tuned[0]["tuning"]["trial_shots_sha256"]
    assert set(trial_shots) == {"1000"}
    assert set(trial_shots["1000"]) == set(trials[0]["shot_sha256"])
    assert not set(trials[0]["shot_sha256"]) & set(default[0]["shot_sha256"])
    assert [h["trial"] for h in history] == [0, 1]
    assert {h["run_ids"][0] for h in history} == {t["run_id"] for t in trials}
    chosen = history[tuned[0]["tuning"]["selected_trial"]]
    assert tuned[0]["hparams"]["train"]["lr_g"] == chosen["train"].get("lr_g", 2e-4)
    # a trial or a tuned run never supersedes the default run of equal settings
    from gtbench.results.records import stale_reasons

    assert stale_reasons(tmp_path) == {}
    # the default-vs-tuned table: one row, the chosen values beside the defaults
    table = pd.read_csv(tmp_path / "tuning.csv")
    assert list(table["method"]) == ["finetune"] and table["trials"].iloc[0] == 2
    row = table.iloc[0]
    assert (row["default_seeds"], row["tuned_seeds"]) == (1, 1)
    assert json.loads(row["default_values"]) == {"train.lr_d": 2e-4, "train.lr_g": 2e-4}
    selected = json.loads(row["selected_values"])
    assert selected == history[tuned[0]["tuning"]["selected_trial"]]["values"]
    measure = {"fid": "fid", "kid": "kid_mean"}[row["metric"]]
    assert row["default_mean"] == pytest.approx(default[0]["metrics"][measure], rel=1e-5)
    assert row["tuned_minus_default_mean"] == pytest.approx(
        row["tuned_mean"] - row["default_mean"], rel=1e-5, abs=1e-6
    )
    # resume: nothing runs again
    again = gtbench(*args, "--trials", "2", *TINY, results=tmp_path)
    assert again.exit_code == 0 and "2 already done" in again.output


def test_validation_target_at_the_source_format() -> None:
    """Trials of animals-dcgan32 see the validation cats converted like the shots."""
    from gtbench.launch.runner import MatchedTarget

    dataset = make_plugin("dataset", plugin_ref("dataset", "animals-cat:res=28"))
    trial = MatchedTarget(dataset, 32, 1, "validation")
    final = MatchedTarget(dataset, 32, 1)
    assert trial.info.validation == 200
    validation = trial.evaluation_images()
    assert validation.shape[1:] == (1, 32, 32)
    assert len(validation) == len(dataset.validation_indices())
    assert not set(image_sha256s(validation)) & set(image_sha256s(final.evaluation_images()))


@pytest.mark.slow
def test_tune_on_a_batchnorm_source(tmp_path: Path) -> None:
    """animals-dcgan32 (BatchNorm) on animals-cat: trials see the 200 validation cats."""
    args = [
        "tune", "--suite", "default", "--methods", "probe", "--extractor", "debug",
        "--trials", "2", "--no-defaults", *TINY,
    ]  # fmt: skip
    result = gtbench(*args, results=tmp_path)
    assert result.exit_code == 0, result.output
    records = _records(tmp_path)
    trials = [r for r in records if r["selection"] == "trial"]
    assert len(trials) == 2
    assert {r["hparams"]["method"]["blocks"] for r in trials} <= {3, -4, -3, -2}
    dataset = make_plugin("dataset", plugin_ref("dataset", "animals-cat"))
    assert {r["eval"]["n_reference"] for r in trials} == {len(dataset.validation_indices())}
    (tuned,) = [r for r in records if r["selection"] == "tuned-validation"]
    assert tuned["eval"]["n_reference"] == len(dataset.evaluation_images())
    assert TuneSettings().trials == 4


def test_leaderboard_pairs_tuned_methods_and_leaves_trials_out(tmp_path: Path) -> None:
    """Tuned rows differ in the learning rates tuning chose, yet share a target (the
    budget) so each is paired with tuned finetune; trial records are never ranked."""
    from gtbench.results.leaderboard import leaderboard, run_rows

    suite, _ = _debug_suite(["finetune", "probe"])
    suite.override(seeds=[0, 1, 2])
    cells = plan_suite(suite).cells
    for cell in cells:
        lr = 1e-4 if cell["method"]["name"] == "finetune" else 6e-4
        fid = 10.0 + cell["seed"] + (0 if cell["method"]["name"] == "finetune" else 5)
        for selection in ("tuned-validation", "trial"):
            record = {
                "schema_version": cell["schema_version"],
                "run_id": f"{selection[:5]}{cell['run_id']}",
                "status": "ok",
                "source": cell["source"],
                "method": cell["method"],
                "dataset": cell["dataset"],
                "shots": cell["shots"],
                "seed": cell["seed"],
                "selection": selection,
                "hparams": {"method": {}, "train": {**cell["train"], "lr_g": lr}},
                "tuning": {"searched": ["train.lr_d", "train.lr_g"]},
                "eval": {**cell["eval"], "is_metric": True},
                "metrics": {"fid": fid, "kid_mean": fid / 100},
            }
            write_record(tmp_path, record)
    board = leaderboard(run_rows(tmp_path))
    assert set(board["selection"]) == {"tuned-validation"}
    assert board["protocol"].nunique() == 1
    probe = board[board["method"] == "probe"].iloc[0]
    assert probe["reference"] == "finetune" and probe["delta_fid_mean"] == pytest.approx(5.0)


def test_default_and_tuned_rows_are_ranked_apart_under_method_names(tmp_path: Path) -> None:
    """One folder with default and tuned rows: the rank table has one block per
    selection (a method counts once per target in each), tuned methods are ranked under
    their name whatever values tuning chose, and a tuned reference with parameters
    (``--reference probe``) is still found in the tuned rows."""
    from gtbench.results.leaderboard import leaderboard, run_rows

    suite, _ = _debug_suite(["finetune", "probe"])
    suite.override(seeds=[0, 1, 2])
    for cell in plan_suite(suite).cells:
        is_probe = cell["method"]["name"] == "probe"
        for selection, shift in (("default", 0.0), ("tuned-validation", -3.0)):
            method = dict(cell["method"])
            if is_probe and selection != "default":
                method["params"] = {**method["params"], "weight": 0.37}
            fid = 10.0 + cell["seed"] + (4.0 if is_probe else 0.0) + shift * (1 + is_probe)
            write_record(
                tmp_path,
                {
                    "schema_version": cell["schema_version"],
                    "run_id": f"{selection[:5]}{cell['run_id']}",
                    "status": "ok",
                    "source": cell["source"],
                    "method": method,
                    "dataset": cell["dataset"],
                    "shots": cell["shots"],
                    "seed": cell["seed"],
                    "selection": selection,
                    "hparams": {"method": method["params"], "train": cell["train"]},
                    "tuning": {"searched": ["weight"]},
                    "eval": {**cell["eval"], "is_metric": True},  # ranked as a real metric
                    "protocol_version": PROTOCOL_VERSION,
                    "metrics": {"fid": fid, "kid_mean": fid / 100},
                },
            )
    runs = run_rows(tmp_path)
    board, ranks = leaderboard(runs, with_ranks=True)
    assert set(board["selection"]) == {"default", "tuned-validation"}
    assert list(ranks["selection"]) == ["default"] * 2 + ["tuned-validation"] * 2
    assert set(ranks["method"]) == {"finetune", "probe"} and set(ranks["n_targets"]) == {1}
    tuned = ranks[ranks["selection"] == "tuned-validation"].set_index("method")["mean_rank"]
    assert tuned["finetune"] == 1 and tuned["probe"] == 2
    board = leaderboard(runs, reference="probe")
    tuned_finetune = board[
        (board["selection"] == "tuned-validation") & (board["method"] == "finetune")
    ].iloc[0]
    assert tuned_finetune["reference"] == "probe"
    assert tuned_finetune["delta_fid_mean"] == pytest.approx(-1.0)  # 10+s-3 vs 14+s-6
