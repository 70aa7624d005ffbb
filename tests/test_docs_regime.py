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
    page = (ROOT / "docs" / "regime.md").read_text()
    lines = [line for line in make.tables(table) if line.startswith(("|", "Budgets", "**"))]
    assert len(lines) > 40
    missing = [line for line in lines if line not in page]
    assert not missing, f"docs/regime.md differs from make_regime.py: {missing[:3]}"


def test_the_budgets_the_page_names_follow_the_written_rule():
    make = _make_regime()
    table = make.means(make.curves(ROOT / "results" / "regime"))
    finetune = table[table["method"] == "finetune"]
    budgets = {dataset: make.budgets(part) for dataset, part in finetune.groupby("dataset")}
    assert budgets["animals-cat"] == (300, 1200, True)
    assert budgets["digits"] == (600, 2400, True)
    assert finetune.groupby("dataset")["seeds"].min().min() >= 3
    page = (ROOT / "docs" / "regime.md").read_text()
    assert "**adapted 300 steps, long 1200 steps**" in page
    assert "**Adapted 600 steps, long 2400 steps**" in page
