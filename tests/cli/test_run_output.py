"""`gtbench run` in a log (stdout not a terminal): one plain line per cell, never wrapped."""

import re
from pathlib import Path

from rich.console import Console

from gtbench.cli import main as cli
from tests.helpers import FAST, gtbench


def test_run_prints_one_unwrapped_line_per_cell_when_not_a_terminal(tmp_path, monkeypatch):
    # A narrow console: before, rich wrapped `... 7cf4ae82371c6081 \nfid 298.78` at its width.
    monkeypatch.setattr(cli, "err", Console(stderr=True, width=40, soft_wrap=cli.err.soft_wrap))
    monkeypatch.setattr(cli, "out", Console(width=40, soft_wrap=cli.out.soft_wrap))
    result = gtbench(
        "run", *FAST, "--methods", "finetune,scratch", "--seeds", "0", results=tmp_path
    )
    assert result.exit_code == 0, result.output
    assert not cli.interactive()
    cells = [line for line in result.output.splitlines() if re.match(r"\[\d+/2\] ", line)]
    assert len(cells) == 2
    for line in cells:
        assert re.fullmatch(
            r"\[[12]/2\] ok debug → debug · (finetune|scratch) · 10-shot · seed 0 [0-9a-f]{16} "
            r"(fid \d+\.\d\d|kid -?\d+\.\d{4} \(FID not valid: too few images for the "
            r"feature size\))( · adapted \d+%)? \(debug extractor: not a metric\)"
            r" · \d+:\d\d elapsed, eta \d+:\d\d",
            line,
        ), line
    assert not re.search(r"[━┃│┏┡└]", result.output)  # no progress bar or box drawing
    header = next(line for line in result.output.splitlines() if line.startswith("method"))
    assert "verdict" in header and "Δ vs finetune" in header
    rows = [line for line in result.output.splitlines() if line.startswith(("finetune", "scratch"))]
    assert len(rows) == 2 and all("not a metric" in row or "reference" in row for row in rows)


def test_run_ends_with_where_to_look_next(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no committed reference results here
    cli._print_next_steps(str(tmp_path / "mine"))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"next: gtbench report --results {tmp_path / 'mine'}")
    assert len(lines) == 2 and "gtbench compare A B" in lines[1]
    (tmp_path / "results" / "reference" / "runs").mkdir(parents=True)
    cli._print_next_steps("results")  # the default folder: no --results to type
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("#")[0].split() == ["next:", "gtbench", "report"]
    assert lines[2].split("#")[0].split() == [
        "gtbench", "leaderboard", "--beside", str(Path("results") / "reference")
    ]  # fmt: skip
    cli._print_next_steps("results/reference")  # the reference itself: nothing beside it
    assert len(capsys.readouterr().out.splitlines()) == 2
