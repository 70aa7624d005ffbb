"""docs/regime.md's tables and budgets are what docs/make_regime.py computes from the
committed regime-study records (a number typed into the page fails here)."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import docs_script

ROOT = Path(__file__).resolve().parents[1]


def _make_regime():
    return docs_script("make_regime")


def test_regime_tables_in_the_docs_are_computed_from_the_committed_records():
    make = _make_regime()
    table = make.means(make.curves(ROOT / "results" / "regime"))
    checks = make.adaptation_checks(ROOT / "results" / "regime" / make.CHECKS)
    page = (ROOT / "docs" / "regime.md").read_text()
    lines = [line for line in make.tables(table, checks) if line.startswith(("|", "Budgets", "**"))]
    assert len(lines) > 40
    missing = [line for line in lines if line not in page]
    assert not missing, f"docs/regime.md differs from make_regime.py: {missing[:3]}"


def test_the_budgets_the_page_names_follow_the_written_rule():
    make = _make_regime()
    table = make.means(make.curves(ROOT / "results" / "regime"))
    checks = make.adaptation_checks(ROOT / "results" / "regime" / make.CHECKS)
    finetune = table[table["method"] == "finetune"]
    budgets = {
        dataset: make.budgets(part, make.checked_for(checks, dataset))
        for dataset, part in finetune.groupby("dataset")
    }
    assert budgets["animals-cat"] == (400, 1600, True)
    assert budgets["digits"] == (600, 2400, True)
    # the KID rule alone names 300 on cats; fine-tuning's runs there adapt < 90 %
    assert make.budgets(finetune[finetune["dataset"] == "animals-cat"])[0] == 300
    assert finetune.groupby("dataset")["seeds"].min().min() >= 3
    # every budget the rule reads from has 5 seeds (faces at 300: one seed, for orientation)
    five = checks[checks["seeds"] == 5]
    assert set(zip(five["dataset"], five["steps"], strict=True)) >= {
        ("animals-cat", 300), ("animals-cat", 400), ("digits", 600), ("lfw-faces", 100),
    }  # fmt: skip
    faces = make.checked_for(checks, "lfw-faces")
    assert min(s for s, a in faces.items() if a >= make.ADAPTED_SHARE) == 100
    page = (ROOT / "docs" / "regime.md").read_text()
    assert "**adapted 400 steps, long 1600 steps**" in page
    assert "**Adapted 600 steps, long 2400 steps**" in page


def test_the_suites_run_at_the_budgets_the_study_names():
    """`full` ranks each target at the study's budgets; `default` is its adapted cats."""
    from gtbench.plan.suite import load_suite

    named = {(p.datasets[0], p.budget): p.train["iters"] for p in load_suite("full").parts()}
    assert named[("animals-cat", "adapted")] == 400 and named[("animals-cat", "long")] == 1600
    assert named[("digits", "adapted")] == 600 and named[("digits", "long")] == 2400
    default = load_suite("default")
    assert (default.budget, default.train["iters"]) == ("adapted", 400)
