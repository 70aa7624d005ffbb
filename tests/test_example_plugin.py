"""The third-party example distribution, pip-installed (into a private folder put on the
path, so the test environment is left as it was), registers its method and dataset
through entry points and runs a cell through the real command line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT / "plugins" / "example"),
        ],
        check=True,
        env=dict(os.environ, TMPDIR=str(build)),
    )
    return target


def _gtbench(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    )
    return subprocess.run(
        [sys.executable, "-m", "gtbench.cli.main", *args], capture_output=True, text=True, env=env
    )


def test_listed_with_its_distribution(installed):
    result = _gtbench(installed, "list", "--json")
    plugins = json.loads(result.stdout)["plugins"]
    method = next(p for p in plugins["method"] if p["name"] == "anchored-finetune")
    dataset = next(p for p in plugins["dataset"] if p["name"] == "stripes")
    assert method["distribution"] == dataset["distribution"] == "gtbench-example 0.1.0"
    assert method["error"] is None and method["parameters"]["weight"]["default"] == 1.0


def test_runs_a_cell(installed, tmp_path):
    result = _gtbench(
        installed,
        "run",
        "--suite",
        "debug",
        "--methods",
        "anchored-finetune:weight=0.5",
        "--datasets",
        "stripes",
        "--iters",
        "3",
        "--n-samples",
        "30",
        "--results",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(next(tmp_path.glob("runs/*/record.json")).read_text())
    assert record["status"] == "ok"
    assert record["plugins"]["method"]["distribution"] == "gtbench-example"
    assert record["method"]["params"] == {"weight": 0.5}


def test_disabled_autoload_hides_it(installed):
    os.environ["GTBENCH_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        result = _gtbench(installed, "list", "method", "--json")
    finally:
        del os.environ["GTBENCH_DISABLE_PLUGIN_AUTOLOAD"]
    names = [p["name"] for p in json.loads(result.stdout)["plugins"]["method"]]
    assert "anchored-finetune" not in names and "finetune" in names
