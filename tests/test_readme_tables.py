"""The README's result tables are the committed CSVs, not numbers typed by hand: each one
equals what ``docs/make_tables.py`` prints from the committed files."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _make_tables():
    spec = importlib.util.spec_from_file_location("make_tables", ROOT / "docs" / "make_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("kind", "csv"),
    [
        ("leaderboard", "results/reference/leaderboard.csv"),
        ("ranks", "results/reference/ranks.csv"),
        ("tuning", "results/tuned/tuning.csv"),
    ],
)
def test_readme_table_equals_the_committed_csv(kind, csv):
    table = "\n".join(getattr(_make_tables(), f"{kind}_table")(str(ROOT / csv)))
    assert table.count("\n") >= 3
    assert table in (ROOT / "README.md").read_text(), f"README's {kind} table is not {csv}"
