"""Commands that only list plugins, plan cells or read records never import torch-fidelity
(with torchvision and dynamo behind it, about 2 s of a 3–7 s command on a CPU;
`perf/cli_latency.py` gives the figures): the networks of feature extractors are
imported only when features are computed."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import sys\n"
    "from gtbench.cli.main import main\n"
    "sys.argv = ['gtbench', *sys.argv[1:]]\n"
    "try:\n"
    "    main()\n"
    "except SystemExit as exit:\n"
    "    code = exit.code\n"
    "else:\n"
    "    code = 0\n"
    "sys.stderr.write(f'\\nEXIT {code} FIDELITY {\"torch_fidelity\" in sys.modules}\\n')\n"
)


def _probe(*args: str) -> tuple[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=300
    )
    marker = done.stderr.rsplit("EXIT ", 1)[-1].split()
    return marker[0], marker[2]


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Path:
    """The committed reference records, without images or weights."""
    copy = tmp_path_factory.mktemp("reference")
    shutil.copytree(
        ROOT / "results" / "reference" / "runs",
        copy / "runs",
        ignore=shutil.ignore_patterns("*.png", "*.safetensors", "*.csv"),
    )
    return copy


def test_list_does_not_import_torch_fidelity():
    assert _probe("list") == ("0", "False")


def test_reading_records_does_not_import_torch_fidelity(records):
    assert _probe("status", "--results", str(records)) == ("0", "False")
    assert _probe("compare", "finetune", "cdc", "--results", str(records)) == ("0", "False")


def test_planning_does_not_import_torch_fidelity(tmp_path):
    plan = ("run", "--methods", "all", "--dry-run", "--results", str(tmp_path / "results"))
    assert _probe(*plan) == ("0", "False")


def test_the_probe_sees_torch_fidelity_when_it_is_imported(tmp_path):
    """The check can fail: a command that evaluates does import it."""
    suite = ("run", "--suite", "debug", "--methods", "source-only", "--seeds", "0")
    assert _probe(*suite, "--results", str(tmp_path / "results")) == ("0", "True")
