"""Kept generators: weights saved per cell, rebuilt by `load_generator`, and
`gtbench generate` (deterministic PNGs, --best, one-line errors)."""

import hashlib
import json

import pytest
import torch
from PIL import Image

from gtbench.evaluation import generate_images
from gtbench.generate import load_generator
from gtbench.images import save_grid
from gtbench.runner import SAMPLES
from tests.helpers import FAST, gtbench


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("results")
    assert gtbench("run", *FAST, "--methods", "finetune,scratch", results=folder).exit_code == 0
    return folder


def _run_id(results, method):
    for path in results.glob("runs/*/record.json"):
        record = json.loads(path.read_text())
        if record["method"]["name"] == method:
            return record["run_id"]
    raise AssertionError(method)


def test_record_says_weights_were_kept(results):
    run_id = _run_id(results, "finetune")
    record = json.loads((results / "runs" / run_id / "record.json").read_text())
    weights = results / "runs" / run_id / record["weights"]["file"]
    assert record["weights"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()


def test_reloaded_generator_reproduces_the_samples_drawn_after_training(results, tmp_path):
    run_id = _run_id(results, "finetune")
    record = json.loads((results / "runs" / run_id / "record.json").read_text())
    generator = load_generator(run_id[:8], results)
    assert isinstance(generator, torch.nn.Module) and not generator.training
    images = generate_images(generator, 64, seed=record["seed"] + 10_000, device="cpu")
    save_grid(images, tmp_path / "again.png")
    assert (tmp_path / "again.png").read_bytes() == (
        results / "runs" / run_id / SAMPLES
    ).read_bytes()


def test_generate_writes_n_pngs_deterministically(results, tmp_path):
    run_id = _run_id(results, "finetune")
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        result = gtbench(
            "generate", run_id, "--n", "5", "--seed", "3", "--out", str(out), results=results
        )
        assert result.exit_code == 0, result.output
    files = sorted(first.glob("*.png"))
    assert len(files) == 5
    for path in files:
        with Image.open(path) as image:
            assert image.size == (16, 16)
        assert path.read_bytes() == (second / path.name).read_bytes()
    other = gtbench(
        "generate",
        run_id,
        "--n",
        "5",
        "--seed",
        "4",
        "--out",
        str(tmp_path / "c"),
        "--grid",
        results=results,
    )
    assert other.exit_code == 0
    assert (tmp_path / "c" / f"{run_id}-seed4-00000.png").read_bytes() != files[0].read_bytes()
    assert list((tmp_path / "c").glob("*grid.png"))


def test_best_picks_the_lowest_mean_fid(results, tmp_path):
    result = gtbench(
        "generate",
        "--best",
        "--dataset",
        "debug",
        "--n",
        "2",
        "--out",
        str(tmp_path),
        results=results,
    )
    assert result.exit_code == 0, result.output
    assert "best on debug" in result.output and len(list(tmp_path.glob("*.png"))) == 2


def _copy_run(results, tmp_path, method, change):
    import shutil

    target = tmp_path / "results"
    run_id = _run_id(results, method)
    shutil.copytree(results / "runs" / run_id, target / "runs" / run_id)
    path = target / "runs" / run_id / "record.json"
    record = json.loads(path.read_text())
    change(record, target / "runs" / run_id)
    path.write_text(json.dumps(record))
    return target, run_id


def _no_weights(record, folder):
    record["weights"] = None


def _failed(record, folder):
    record["status"] = "failed"


def _tampered(record, folder):
    (folder / "generator.safetensors").write_bytes(b"x" * 10)


def _plugin_gone(record, folder):
    record["source"]["name"] = "uninstalled-source"


@pytest.mark.parametrize(
    "change, message",
    [
        (_no_weights, "kept no weights"),
        (_failed, "has status failed"),
        (_tampered, "does not match its record"),
        (_plugin_gone, "unknown source 'uninstalled-source'"),
    ],
)
def test_bad_runs_get_one_line(results, tmp_path, change, message):
    target, run_id = _copy_run(results, tmp_path, "finetune", change)
    result = gtbench("generate", run_id, results=target)
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output


def test_unknown_and_ambiguous_ids(results):
    assert "no run 'zzz'" in gtbench("generate", "zzz", results=results).output
    ids = [_run_id(results, m) for m in ("finetune", "scratch")]
    common = 0
    while ids[0][common] == ids[1][common]:
        common += 1
    if common:
        result = gtbench("generate", ids[0][:common], results=results)
        assert "ambiguous" in result.output
    result = gtbench("generate", "", results=results)
    assert result.exit_code != 0


def test_no_keep_weights(tmp_path):
    result = gtbench("run", *FAST, "--methods", "finetune", "--no-keep-weights", results=tmp_path)
    assert result.exit_code == 0
    record = json.loads(next(tmp_path.glob("runs/*/record.json")).read_text())
    assert record["weights"] is None
    assert not list(tmp_path.glob("runs/*/generator.safetensors"))
    assert "kept no weights" in gtbench("generate", record["run_id"], results=tmp_path).output
