"""train_log.csv (every check_every steps, written so that a crash leaves it readable and
a rerun starts it fresh), the record's trainer counts, the EMA's BatchNorm recompute in
the runner and the FID curve."""

from __future__ import annotations

import csv

import pytest
import torch

from gtbench.api import Method, Phase, to_unit_range
from gtbench.launch.runner import TRAIN_LOG, run_cell
from gtbench.plan.cells import plan_suite
from gtbench.plan.suite import load_suite
from gtbench.plugin import registry
from gtbench.results.records import load_record
from gtbench.train.trainer import TrainConfig, build_context, curve_steps, train


def _context(tmp_path, iters=8, **config):
    networks = registry.sources().create("debug").load()
    real = to_unit_range(registry.datasets().create("debug").images()[:10])
    cfg = TrainConfig(iters=iters, batch_size=4, **config)
    ctx = build_context(
        networks.generator, networks.discriminator, real, cfg, 0, torch.device("cpu")
    )
    ctx.log_path = tmp_path / TRAIN_LOG
    return ctx


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


class Logging(Method):
    def phases(self, ctx):
        return [Phase("probe", 2), Phase("main")]

    def generator_loss(self, ctx, step):
        penalty = step.fake.square().mean()
        ctx.log("my_penalty", penalty)
        return 0.1 * penalty

    def after_step(self, ctx, step):
        if step.update == "d":
            ctx.log("aug_p", 0.25)


def test_rows_every_check_with_losses_d_outputs_r1_lr_and_method_terms(tmp_path):
    ctx = _context(tmp_path, iters=8, d_warmup=2, check_every=2, r1_every=1)
    train(ctx, Logging())
    rows = _rows(tmp_path / TRAIN_LOG)
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 8]
    assert [r["phase"] for r in rows] == ["warmup", "probe", "main", "main"]
    assert [int(r["g_steps"]) for r in rows] == [0, 2, 4, 6]
    first, last = rows[0], rows[-1]
    assert first["loss_g"] == "" and first["my_penalty"] == ""  # D-only warm-up
    for key in ("loss_g", "loss_d", "d_real", "d_fake", "r1", "reg_g", "lr_g", "lr_d"):
        assert float(last[key]) == float(last[key]), key  # a number, not NaN or empty
    assert float(last["loss_d"]) > 0 and float(last["r1"]) >= 0
    assert float(last["reg_g"]) == pytest.approx(0.1 * float(last["my_penalty"]), rel=1e-4)
    assert float(last["lr_g"]) == ctx.config.lr_g and float(last["aug_p"]) == 0.25


def test_every_row_measures_the_regulariser_against_the_adversarial_loss(tmp_path):
    """reg_grad_ratio over the whole run, not only the record's last 10 %: rows measured
    at their first update (all 5 rows here, none of them in the last 10 % but the last)."""
    import torch.nn.functional as F

    class Double(Method):
        def generator_loss(self, ctx, step):
            return 2 * F.softplus(-step.d_fake).mean()  # gradient = 2 × adversarial

        def discriminator_loss(self, ctx, step):
            return 3 * (F.softplus(step.d_fake).mean() + F.softplus(-step.d_real).mean())

    ctx = _context(tmp_path, iters=20, check_every=4, r1_gamma=0.0)
    train(ctx, Double())
    rows = _rows(tmp_path / TRAIN_LOG)
    assert len(rows) == 5
    for row in rows:
        assert float(row["reg_grad_ratio"]) == pytest.approx(2.0, rel=1e-4)
        assert float(row["reg_grad_ratio_d"]) == pytest.approx(3.0, rel=1e-4)
    plain = tmp_path / "plain"
    plain.mkdir()
    ctx = _context(plain, iters=4, check_every=2)
    train(ctx, Method())
    assert all("reg_grad_ratio" not in r for r in _rows(plain / TRAIN_LOG))


def test_a_crash_leaves_a_readable_log_and_a_rerun_starts_it_fresh(tmp_path):
    class Crash(Method):
        def after_step(self, ctx, step):
            if step.index == 6:
                raise RuntimeError("boom")

    (tmp_path / TRAIN_LOG).write_text("stale,header\n1,2\n")
    with pytest.raises(RuntimeError, match="boom"):
        train(_context(tmp_path, iters=10, check_every=2), Crash())
    assert [int(r["step"]) for r in _rows(tmp_path / TRAIN_LOG)] == [2, 4, 6]
    assert not list(tmp_path.glob("*.tmp*"))
    train(_context(tmp_path, iters=2, check_every=1), Method())
    assert [int(r["step"]) for r in _rows(tmp_path / TRAIN_LOG)] == [1, 2]


def test_curve_steps_are_evenly_spaced_and_end_at_the_budget():
    assert curve_steps(300, 4) == (75, 150, 225, 300)
    assert curve_steps(3, 5) == (1, 2, 3)
    assert curve_steps(300, 0) == ()


def _cell(tmp_path, source="debug", method="finetune", curve=0, curve_n=10, extractor=None):
    suite = load_suite("debug")
    suite.sources, suite.methods = [source], [method]
    suite.train.update(iters=6, batch_size=2, check_every=2, d_warmup=1)
    suite.eval.update(n_samples=12, kid_subset_size=6)
    suite.curve, suite.curve_n_samples = curve, curve_n
    if extractor is not None:
        suite.extractor = extractor
    cell = plan_suite(suite).cells[0]
    if curve and "curve" not in cell:  # planned by gtbench.plan.cells once it knows the key
        cell["curve"] = {"points": curve, "n_samples": curve_n}
    outcome = run_cell(cell, tmp_path)
    record = load_record(tmp_path, outcome.run_id)
    assert outcome.status == "ok", record.get("error")
    return record, tmp_path / "runs" / outcome.run_id


def test_record_counts_log_and_batchnorm_on_a_batchnorm_source(tmp_path):
    record, folder = _cell(tmp_path, source="animals-dcgan32")
    assert (record["g_steps"], record["d_steps"], record["warmup_steps"]) == (5, 6, 1)
    assert record["images_seen"] == 12 and record["ema_batchnorm"] == "recomputed"
    assert record["train_log"] == TRAIN_LOG
    assert [int(r["step"]) for r in _rows(folder / TRAIN_LOG)] == [2, 4, 6]
    assert "curve" not in record and "fid_best_over_training" not in record["metrics"]


def test_curve_in_the_record_beside_the_ranked_fid(tmp_path):
    # 40 generated and 160 evaluation images in the 32-d conv1 features: FID valid
    record, _ = _cell(tmp_path, curve=3, curve_n=40, extractor="debug:layer=conv1")
    assert [p["step"] for p in record["curve"]] == [2, 4, 6]
    assert all(p["n_samples"] == 40 and p["fid"] >= 0 for p in record["curve"])
    assert all(p["fid_valid"] for p in record["curve"]) and record["curve_best_by"] == "fid"
    best = min(record["curve"], key=lambda p: p["fid"])
    assert record["metrics"]["fid_best_over_training"] == best["fid"]
    assert record["metrics"]["fid_best_step"] == best["step"]
    assert "not the ranked number" in record["curve_note"]
    assert record["metrics"]["fid"] != best["fid"]  # the final, fixed-budget evaluation


def test_curve_picks_by_kid_when_the_generated_side_is_too_small_for_fid(tmp_path):
    # 160 evaluation images exceed the 128-d features; the curve's 10 samples do not
    record, _ = _cell(tmp_path, curve=3, curve_n=10)
    assert record["eval"]["n_reference"] > record["eval"]["feature_dim"] == 128
    assert not any(p["fid_valid"] for p in record["curve"])
    assert record["curve_best_by"] == "kid" and "fid_best_over_training" not in record["metrics"]
    best = min(record["curve"], key=lambda p: p["kid_mean"])
    assert record["metrics"]["kid_best_over_training"] == best["kid_mean"]
    assert record["metrics"]["kid_best_step"] == best["step"]
    # the final evaluation's 12 samples: FID invalid on the generated side alone
    assert record["metrics"]["fid_valid"] is False
    assert "12 generated images" in record["eval"]["fid_valid_reason"]
