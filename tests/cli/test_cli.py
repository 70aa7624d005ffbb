"""End-to-end runs of the debug suite through the command line, and its bad-input paths."""

import json
import os
import re
import stat

import pandas as pd
import pytest

from gtbench.api import Method
from gtbench.plugin import registry
from tests.helpers import FAST, gtbench


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    result = gtbench("run", *FAST, "--seeds", "0,1", results=results)
    assert result.exit_code == 0, result.output
    return results


def test_run_writes_records_tables_and_samples(finished):
    runs = pd.read_csv(finished / "runs.csv")
    assert len(runs) == 6 and set(runs["status"]) == {"ok"}
    board = pd.read_csv(finished / "leaderboard.csv")
    assert list(board.columns[:10]) == [
        "source",
        "method",
        "dataset",
        "shots",
        "extractor",
        "n_seeds",
        "fid_mean",
        "fid_std",
        "kid_mean",
        "kid_std",
    ]
    assert set(board["n_seeds"]) == {2} and len(board) == 3
    for run_id in runs["run_id"]:
        folder = finished / "runs" / run_id
        record = json.loads((folder / "record.json").read_text())
        for key in ("schema_version", "hparams", "metrics", "timings", "plugins", "environment"):
            assert key in record
        assert record["eval"]["kid_subset_size"] <= record["eval"]["n_samples"]
        assert record["environment"]["torch_threads"] >= 1
        assert record["plugins"]["method"]["distribution"] == "gtbench"
        assert (folder / "samples.png").stat().st_size > 0
        assert (folder / "generator.safetensors").exists()


def test_rerun_skips_done_cells(finished):
    before = {p: p.stat().st_mtime_ns for p in (finished / "runs").glob("*/record.json")}
    result = gtbench("run", *FAST, "--seeds", "0,1", results=finished)
    assert result.exit_code == 0 and "6 already done" in result.output
    assert before == {p: p.stat().st_mtime_ns for p in (finished / "runs").glob("*/record.json")}


@pytest.mark.parametrize("fmt", ["csv", "md", "json", "table"])
def test_leaderboard_formats(finished, fmt):
    result = gtbench("leaderboard", "--format", fmt, results=finished)
    assert result.exit_code == 0
    assert "finetune" in result.output
    if fmt == "table":
        assert "★" in result.output


def test_show_accepts_a_prefix(finished):
    run_id = pd.read_csv(finished / "runs.csv")["run_id"][0]
    result = gtbench("show", run_id[:6], results=finished)
    assert result.exit_code == 0 and run_id in result.output and "samples.png" in result.output
    missing = gtbench("show", "zzzz", results=finished)
    assert missing.exit_code == 1 and "no run 'zzzz'" in missing.output


def test_list_shows_every_kind():
    result = gtbench("list", "--json")
    listing = json.loads(result.output)["plugins"]
    assert {"source", "method", "dataset", "extractor", "launcher"} <= set(listing)
    assert any(p["name"] == "finetune" for p in listing["method"])


def test_list_shows_each_plugins_own_version(monkeypatch):
    """The version the plugin guide says to bump (part of every run id), not only the
    distribution's: in the JSON, in a log and in the terminal table."""
    from rich.console import Console

    from gtbench.cli import main as cli
    from gtbench_plugins.methods.finetune import FineTune

    monkeypatch.setattr(FineTune, "version", "7b")
    listing = json.loads(gtbench("list", "method", "--json").output)["plugins"]["method"]
    assert next(p for p in listing if p["name"] == "finetune")["version"] == "7b"
    lines = gtbench("list", "method").output.splitlines()
    assert any(line.startswith("  finetune (gtbench ") and line.endswith(", version 7b, ok)")
               for line in lines)  # fmt: skip
    monkeypatch.setattr(cli, "interactive", lambda: True)
    monkeypatch.setattr(cli, "out", Console(width=400))
    with cli.out.capture() as captured:
        gtbench("list", "method")
    cells = [line.split("│") for line in captured.get().splitlines()]
    row = next(cell for cell in cells if len(cell) > 2 and cell[1].strip() == "finetune")
    assert row[2].strip() == "7b"


def test_list_in_a_log_is_plain_lines_never_wrapped():
    result = gtbench("list", "method")  # CliRunner: stdout is not a terminal
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "methods" and not re.search(r"[━┃│┏┡└]", result.output)
    at = lines.index(next(line for line in lines if line.startswith("  adam (")))
    assert lines[at].endswith(", ok)")
    # every parameter whole on one line (a table had split "probe_max_fractio / n=0.25")
    assert "probe_max_fraction=0.25" in lines[at + 2] and "quantile=50.0 ~ " in lines[at + 2]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--methods", "finetun"], "did you mean 'finetune'"),
        (["--shots", "0"], "--shots must be at least 1"),
        (["--shots", "-2"], "--shots must be at least 1"),
        (["--shots", "500"], "--shots 500 is larger than dataset"),
        (["--shots", "ten"], "comma-separated integers"),
        (["--sources", "debug:widht=2"], "has no parameter 'widht'"),
        (["--launcher", "slurmm"], "unknown launcher"),
    ],
)
def test_usage_errors_are_one_line_exit_2(tmp_path, args, message):
    result = gtbench("run", *FAST, *args, results=tmp_path)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_unwritable_results_folder(tmp_path):
    if os.geteuid() == 0:
        target = tmp_path / "file"
        target.write_text("not a folder")  # root ignores permissions; a file blocks mkdir
    else:
        target = tmp_path / "ro"
        target.mkdir()
        target.chmod(stat.S_IRUSR | stat.S_IXUSR)
    result = gtbench("run", *FAST, "--methods", "finetune", results=target)
    assert result.exit_code == 2 and "not writable" in result.output


def test_corrupt_record_is_reported_and_rerun(tmp_path):
    assert gtbench("run", *FAST, "--methods", "finetune", results=tmp_path).exit_code == 0
    record = next((tmp_path / "runs").glob("*/record.json"))
    record.write_text('{"status": "ok", "run_')  # truncated
    result = gtbench("run", *FAST, "--methods", "finetune", results=tmp_path)
    assert result.exit_code == 0 and "corrupt record" in result.output
    assert json.loads(record.read_text())["status"] == "ok"


class _Explode(Method):
    def generator_loss(self, ctx, step):
        return step.fake.mean() * float("nan")


class _Crash(Method):
    def setup(self, ctx):
        raise RuntimeError("boom in setup")


def test_diverged_and_failed_cells_do_not_stop_the_sweep(tmp_path):
    registry.methods().register("explode", _Explode)
    registry.methods().register("crash", _Crash)
    try:
        result = gtbench("run", *FAST, "--methods", "explode,crash,finetune", results=tmp_path)
    finally:
        registry.reset()
    assert result.exit_code == 1
    runs = pd.read_csv(tmp_path / "runs.csv").set_index("method")
    assert runs.loc["explode", "status"] == "diverged"
    assert runs.loc["crash", "status"] == "failed"
    assert "boom in setup" in runs.loc["crash", "error"]
    assert runs.loc["finetune", "status"] == "ok"
    crash_id = runs.loc["crash", "run_id"]
    assert "RuntimeError" in (tmp_path / "runs" / crash_id / "traceback.txt").read_text()
    board = gtbench("leaderboard", results=tmp_path)
    assert "failed:" in board.output and "diverged:" in board.output


def test_missing_extractor_weights_fail_before_training(tmp_path, monkeypatch):
    monkeypatch.delenv("GTBENCH_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    result = gtbench(
        "run",
        *FAST,
        "--methods",
        "finetune",
        "--extractor",
        f"inception-v3-compat:weights={tmp_path / 'none.pth'}",
        results=tmp_path,
    )
    assert result.exit_code == 1
    assert "inception" in result.output.lower() and "Traceback" not in result.output
    assert not list((tmp_path / "runs").glob("*/record.json"))


def test_leaderboard_exports_one_grid_per_row(finished, tmp_path):
    result = gtbench("leaderboard", "--grids", str(tmp_path / "grids"), results=finished)
    assert result.exit_code == 0
    grids = sorted((tmp_path / "grids").glob("*.png"))
    assert len(grids) == 3 and all("debug__debug__10shot__" in g.name for g in grids)


def test_no_wait_needs_a_detaching_launcher(tmp_path):
    result = gtbench("run", *FAST, "--methods", "finetune", "--no-wait", results=tmp_path)
    assert result.exit_code == 2 and "--no-wait needs a launcher" in result.output


def test_missing_asset_fails_the_sweep_before_training(tmp_path, monkeypatch):
    from gtbench.files.assets import Asset
    from gtbench_plugins.datasets.debug import DebugDataset

    class NeedsFile(DebugDataset):
        assets = (Asset("unobtainable", "data.bin", "0" * 64, urls=("https://example.invalid/x",)),)

    monkeypatch.setenv("GTBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("GTBENCH_OFFLINE", "1")
    registry.datasets().register("needs-file", NeedsFile)
    try:
        result = gtbench("run", *FAST, "--datasets", "needs-file", results=tmp_path / "r")
    finally:
        registry.reset()
    assert result.exit_code == 1
    assert "asset 'unobtainable' is unavailable" in result.output
    assert not list((tmp_path / "r").glob("runs/*/record.json"))


# --------------------------------------------------------------------------- a fast CLI

HEAVY = ("torch", "torch_fidelity", "pandas")
PROBE = (
    "import sys\n"
    "from click.testing import CliRunner\n"
    "from gtbench.cli.main import main\n"
    "result = CliRunner().invoke(main, sys.argv[1:])\n"
    "print(result.exit_code, [m for m in {heavy!r} if m in sys.modules])\n"
    "print(result.output)\n"
)


def _probe(*args):
    """Exit code, heavy modules imported and output of the CLI in a fresh interpreter."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    first, _, output = done.stdout.partition("\n")
    code, _, heavy = first.partition(" ")
    return int(code), heavy, output


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--help"], 0, "Commands:"),
        (["run", "--help"], 0, "--device"),
        (["leaderboard", "--help"], 0, "[default: table]"),
        (["run", "--methods", "finetun"], 2, "did you mean 'finetune'"),
        (["run", "--sources", "nope:x=1"], 2, "unknown source 'nope'"),
        (["run", "--shots", "ten"], 2, "comma-separated integers"),
        (["run", "--device", "gpu"], 2, "--device must be cpu, cuda, cuda:N or mps"),
        (["run", "--iters", "-1"], 2, "Invalid value for '--iters'"),
        (["run", "--bogus"], 2, "No such option"),
    ],
)
def test_help_and_usage_errors_import_nothing_heavy(args, code, message):
    """What makes them answer in well under a second (perf/cli_latency.py has figures)."""
    exit_code, heavy, output = _probe(*args)
    assert (exit_code, heavy) == (code, "[]"), output
    assert message in output


def test_lazy_commands_are_listed_with_their_own_help():
    import importlib

    from gtbench.cli.main import LAZY_COMMANDS

    for name, (target, short) in LAZY_COMMANDS.items():
        module, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module), attr)
        assert command.name == name
        assert command.get_short_help_str(limit=1000) == short
    result = gtbench("status", "--help")
    assert result.exit_code == 0 and "--results" in result.output


def test_every_run_option_documents_its_default_or_choices():
    result = gtbench("run", "--help")
    text = " ".join(result.output.split())
    for expected in (
        "[default: results]",
        "[default: default]",
        "[env var: GTBENCH_DEVICE]",
        "[installed: ada, adafm,",
        "[installed: local, process, ray, slurm]",
        "default: the suite's",
    ):
        assert expected in text, expected


def test_device_option_and_its_environment_form(tmp_path, monkeypatch):
    monkeypatch.setenv("GTBENCH_DEVICE", "")  # restored after the test (the CLI exports it)
    result = gtbench("run", *FAST, "--methods", "finetune", "--device", "cpu", results=tmp_path)
    assert result.exit_code == 0, result.output
    record = json.loads(next((tmp_path / "runs").glob("*/record.json")).read_text())
    assert record["device"] == "cpu"
    monkeypatch.setenv("GTBENCH_DEVICE", "tpu")
    result = gtbench("run", *FAST, results=tmp_path)
    assert result.exit_code == 2 and "--device must be" in result.output


def test_a_missing_cuda_device_fails_before_training(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("GTBENCH_DEVICE", "")  # restored after the test (the CLI exports it)
    result = gtbench("run", *FAST, "--methods", "finetune", "--device", "cuda:1", results=tmp_path)
    assert result.exit_code == 2
    assert "--device cuda:1: this machine has 0 visible CUDA device(s)" in result.output
    assert not list(tmp_path.glob("runs/*/record.json"))


@pytest.mark.network
def test_fetch_downloads_into_an_empty_cache(tmp_path):
    """The one place the test suite downloads (PyPI): run with `pytest -m network`."""
    result = gtbench("fetch", "animals-cat", "--cache", str(tmp_path / "cache"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cache" / "downloads" / "animal_mnist-0.4-py3-none-any.whl").is_file()
