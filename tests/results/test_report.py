"""`gtbench report`: one self-contained HTML file, checked for structure (fast) and in a
real headless Chromium (slow)."""

import base64
import io
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pandas as pd
import pytest
from PIL import Image

from tests.helpers import FAST, gtbench


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    sweep = gtbench("run", *FAST, "--methods", "finetune,source-only", "--seeds", "0,1,2",
                    results=results)  # fmt: skip
    assert sweep.exit_code == 0, sweep.output
    result = gtbench("report", results=results)
    assert result.exit_code == 0, result.output
    assert f"report: {results / 'report.html'}" in result.output
    return results


class _Page(HTMLParser):
    """Images, leaderboard rows and anything that would need the network."""

    def __init__(self):
        super().__init__()
        self.images, self.rows, self.external, self.headings = [], 0, [], []
        self._table = self._body = self._heading = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "table":
            self._table = attrs.get("id") == "leaderboard"
        if tag == "tbody" and self._table:
            self._body = True
        if tag == "tr" and self._body:
            self.rows += 1
        if tag in ("script", "link", "iframe") or re.match(r"https?:", attrs.get("src") or ""):
            self.external.append((tag, attrs))
        self._heading = tag == "h2"

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._body = False
        if tag == "table":
            self._table = False

    def handle_data(self, data):
        if self._heading and data.strip():
            self.headings.append(data.strip())
            self._heading = False


def test_report_is_one_self_contained_file(report):
    page = _Page()
    page.feed((report / "report.html").read_text())
    board = pd.read_csv(report / "leaderboard.csv")
    assert page.rows == len(board) == 2
    assert not page.external
    assert page.headings[:3] == [
        "Leaderboard",
        "Mean rank",
        "Paired difference to the reference",
    ]
    assert {"Training", "Training shots and samples", "Most memorised samples"} <= set(
        page.headings
    )
    # forest + 2 scatter panels + training log + shots + 2 sample grids + 2 memorised
    assert len(page.images) >= 8
    for source in page.images:
        header, _, data = source.partition(",")
        assert header == "data:image/png;base64"
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            image.load()
            assert image.width > 10 and image.height > 10


def test_report_states_the_verdicts_it_can_support(report):
    text = (report / "report.html").read_text()
    assert "source-only (p " in text or "not a metric" in text  # forest labels
    assert "reference" in text and "★" in text


def test_report_without_results_is_a_usage_error(tmp_path):
    result = gtbench("report", results=tmp_path)
    assert result.exit_code == 2 and "no results" in result.output


_CHECK = """<script>
window.__errors = [];
window.addEventListener(
  'error', e => window.__errors.push(String(e.message || e.target.src)), true);
const original = console.error;
console.error = (...args) => { window.__errors.push(args.join(' ')); original(...args); };
window.addEventListener('load', () => {
  const images = Array.from(document.images);
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  const rows = document.querySelectorAll('#leaderboard tbody tr').length;
  const out = document.createElement('pre');
  out.id = 'check';
  const errors = window.__errors.length;
  out.textContent = `images=${images.length} broken=${broken} rows=${rows} errors=${errors}`;
  document.body.appendChild(out);
});
</script>"""


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no Chromium (apt-get install chromium)")


@pytest.mark.slow
def test_report_renders_in_headless_chromium(report, tmp_path):
    browser = _chromium()
    checked = tmp_path / "checked.html"
    text = (report / "report.html").read_text()
    checked.write_text(text.replace("<head>", "<head>" + _CHECK, 1))
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000"]  # fmt: skip
    dom = subprocess.run([*flags, "--dump-dom", checked.as_uri()], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert dom.returncode == 0, dom.stderr[-2000:]
    check = re.search(r'<pre id="check">(.*?)</pre>', dom.stdout)
    assert check, dom.stdout[-2000:]
    numbers = dict(part.split("=") for part in check.group(1).split())
    board = pd.read_csv(report / "leaderboard.csv")
    assert int(numbers["rows"]) == len(board)
    assert int(numbers["images"]) >= 8 and numbers["broken"] == "0" and numbers["errors"] == "0"
    assert not re.search(r"CONSOLE|Uncaught", dom.stderr)
    shot = subprocess.run(
        [*flags, "--window-size=1400,3000", "--screenshot=/tmp/report.png",
         (report / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert shot.returncode == 0 and not re.search(r"CONSOLE|Uncaught", shot.stderr)
    with Image.open("/tmp/report.png") as image:
        assert image.size == (1400, 3000)


def test_report_of_records_alone_plots_shots_and_curves_and_says_what_is_missing(tmp_path):
    from gtbench.results.records import write_record
    from gtbench.results.report import write_report
    from tests.results.test_leaderboard import _record

    curve = [{"step": s, "fid": 50.0 - s, "kid_mean": 0.1, "n_samples": 20} for s in (5, 10)]
    for shots in (10, 100):
        for method, base in (("finetune", 10.0), ("cdc", 12.0)):
            for seed in range(3):
                record = _record(f"{method}{shots}-{seed}", method, seed, base + seed + shots / 10)
                record.update(shots=shots, curve=curve)
                write_record(tmp_path, record)
                log = tmp_path / "runs" / record["run_id"] / "train_log.csv"
                log.write_text("step,phase,loss_g,loss_d\n5,main,0.7,1.3\n10,main,0.6,1.2\n")
    path, notes = write_report(tmp_path)
    page = _Page()
    page.feed(path.read_text())
    assert "Data efficiency: quality vs number of shots" in page.headings
    # per target (10 and 100 shots) a forest plot, a train_log plot and a curve; one shots plot
    assert page.rows == 4 and len(page.images) == 2 + 2 + 2 + 1
    assert any("no samples.png" in note for note in notes)
    assert any("no kept generator weights" in note for note in notes)


def test_report_html_escapes_every_value():
    """The template autoescapes: a name with markup in it stays text."""
    from gtbench.results.report import _html

    section = str(
        _html().leaderboard(
            "fine<b>tune",
            ["title & <i>more</i>", "second line"],
            ["method <x>"],
            [{"best": True, "cells": [('a"b<script>', "#d73027")]}],
        )
    )
    assert "fine&lt;b&gt;tune" in section and "<script>" not in section
    assert "title &amp; &lt;i&gt;more&lt;/i&gt;<br>second line" in section
    assert '<tr class="best"><td style="color:#d73027">a&#34;b&lt;script&gt;</td></tr>' in section
    assert "<th>method &lt;x&gt;</th>" in section


def _efficiency_records(folder, shot_counts, dataset="debug", methods=("finetune", "cdc")):
    from gtbench.results.records import write_record
    from tests.results.test_leaderboard import _record

    for shots in shot_counts:
        for offset, method in enumerate(methods):
            for seed in range(3):
                fid = 30.0 + 2 * offset + seed - 5 * math.log(shots)
                run_id = f"{dataset}-{method}{shots}-{seed}"
                record = _record(run_id, method, seed, fid, dataset__name=dataset)
                record.update(shots=shots)
                write_record(folder, record)


def _efficiency_figures(folder):
    from gtbench.results.report import write_report

    path, _ = write_report(folder, memorised=False)
    text = path.read_text()
    page = _Page()
    page.feed(text)
    return page, text.count('alt="data efficiency"')


def test_report_draws_data_efficiency_for_targets_run_at_two_shot_counts_or_more(
    tmp_path, monkeypatch
):
    """Records of one target at 5, 10 and 50 shots give one data-efficiency figure (a line
    per method, seed intervals); a target run at one shot count gets none."""
    monkeypatch.setattr("gtbench.results.leaderboard.stale_reasons", lambda *a, **k: {})
    _efficiency_records(tmp_path, (5, 10, 50))
    _efficiency_records(tmp_path, (10,), dataset="other")
    page, figures = _efficiency_figures(tmp_path)
    assert "Data efficiency: quality vs number of shots" in page.headings
    assert figures == 1
    from gtbench.results.leaderboard import leaderboard, run_rows
    from gtbench.results.report import _efficiency_groups

    groups = _efficiency_groups(leaderboard(run_rows(tmp_path), "finetune"))
    assert [(title, sorted(set(rows["shots"]))) for title, rows in groups] == [
        ("debug → debug · debug", [5, 10, 50])
    ]


def test_report_omits_the_data_efficiency_plot_with_one_shot_count(tmp_path):
    _efficiency_records(tmp_path, (10,))
    _efficiency_records(tmp_path, (10,), dataset="other")
    page, figures = _efficiency_figures(tmp_path)
    assert figures == 0
    assert not any("Data efficiency" in heading for heading in page.headings)
