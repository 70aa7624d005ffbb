"""Provenance in identity: ``run_id`` covers plugin versions, the dataset's content and the
extractor's weights; records made by older code are stale and rerun (or kept with
``--keep-stale``); records name no path of the machine that made them; ``--force`` keeps
the previous good record until the new run succeeds."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import ClassVar

import pytest
import torch

from gtbench.api import Parameter
from gtbench.cli.status import cell_states
from gtbench.plan.cells import plan_suite
from gtbench.plan.identity import identity_of, run_id_of
from gtbench.plan.suite import load_suite
from gtbench.plugin import registry
from gtbench.results.records import (
    FAILED_RECORD,
    RECORD,
    TRACEBACK,
    iter_records,
    run_dir,
    stale_reasons,
    staleness,
)
from gtbench_plugins.datasets.debug import DebugDataset
from gtbench_plugins.extractors.debug import DebugExtractor
from gtbench_plugins.methods.finetune import FineTune
from tests.helpers import FAST, gtbench

TINY = [*FAST, "--iters", "2", "--n-samples", "20"]


@pytest.fixture(autouse=True)
def _fresh_registry():
    registry.reset()
    yield
    registry.reset()


def _plan(**changes):
    suite = load_suite("debug")
    suite.methods = ["finetune"]
    for key, value in changes.items():
        setattr(suite, key, value)
    return plan_suite(suite)


def _only_cell(**changes) -> dict:
    (cell,) = _plan(**changes).cells
    return cell


def _records(results: Path) -> dict[str, dict]:
    return {r["run_id"]: r for r in iter_records(results)}


# --------------------------------------------------------------------------- run_id


def test_run_id_covers_versions_content_and_extractor():
    cell = _only_cell()
    identity = identity_of(cell)
    for kind in ("source", "method", "dataset"):
        assert identity[kind]["version"] == "1"
    assert identity["eval"]["extractor"]["identity"] == DebugExtractor().identity()
    assert len(identity["dataset_content"]) == 64
    assert identity["trainer_version"] is not None and identity["protocol_version"] is not None
    # the evaluation batch size cannot change a number: not part of the identity
    assert "batch_size" not in identity["eval"] and "batch_size" in cell["eval"]
    suite = load_suite("debug")
    suite.methods = ["finetune"]
    suite.eval["batch_size"] = 7
    assert plan_suite(suite).cells[0]["run_id"] == cell["run_id"]
    assert run_id_of(cell) == cell["run_id"]


class Versioned(FineTune):
    """finetune under another name, with a version the tests bump."""

    version: ClassVar[str] = "1"
    broken: ClassVar[bool] = False

    def setup(self, ctx):  # noqa: ANN001, ANN201
        if type(self).broken:
            raise RuntimeError("boom: this plugin is broken now")
        return super().setup(ctx)


def test_bumping_a_plugin_version_changes_run_id_and_makes_the_record_stale(tmp_path):
    Versioned.version, Versioned.broken = "1", False
    registry.methods().register("versioned", Versioned)
    (planned,) = _plan(methods=["versioned"]).cells
    args = [*TINY, "--methods", "versioned"]
    first = gtbench("run", *args, results=tmp_path)
    assert first.exit_code == 0, first.output
    (old,) = _records(tmp_path).values()
    assert old["method"]["version"] == "1" and staleness(old) is None
    assert stale_reasons(tmp_path) == {}

    Versioned.version = "2"
    (bumped,) = _plan(methods=["versioned"]).cells
    assert bumped["run_id"] != planned["run_id"]
    assert staleness(old) == "method versioned version 1 → 2"

    # --keep-stale: nothing runs, the old record stays in use
    kept = gtbench("run", *args, "--keep-stale", results=tmp_path)
    assert kept.exit_code == 0, kept.output
    assert "1 stale records" in kept.output and "1 already done" in kept.output
    assert list(_records(tmp_path)) == [old["run_id"]]
    assert stale_reasons(tmp_path) == {}  # kept: tables go on using it

    dry = gtbench("run", *args, "--dry-run", results=tmp_path)
    assert f"stale {old['run_id']}" in dry.output and "version 1 → 2" in dry.output
    assert "would run" in dry.output and "1 to run" in dry.output
    assert list(_records(tmp_path)) == [old["run_id"]]  # a dry run runs nothing

    rerun = gtbench("run", *args, results=tmp_path)
    assert rerun.exit_code == 0, rerun.output
    assert "1 stale records" in rerun.output and "method versioned version 1 → 2" in rerun.output
    records = _records(tmp_path)
    assert len(records) == 2 and old["run_id"] in records  # the old record stays...
    (new,) = (r for r in records.values() if r["run_id"] != old["run_id"])
    assert new["method"]["version"] == "2" and f"would run {new['run_id']}" in dry.output
    assert stale_reasons(tmp_path) == {old["run_id"]: "method versioned version 1 → 2"}
    states = {row["run_id"]: row["state"] for row in cell_states(tmp_path)}
    assert states == {old["run_id"]: "stale", new["run_id"]: "done"}  # ...set apart

    again = gtbench("run", *args, results=tmp_path)
    assert "1 already done" in again.output and "stale records" not in again.output


class Reshaded(DebugDataset):
    """The debug discs, brightened by a class attribute the tests change."""

    shift: ClassVar[int] = 0

    def images(self) -> torch.Tensor:
        return (super().images().int() + type(self).shift).clamp(0, 255).to(torch.uint8)


def test_changing_dataset_content_changes_run_id():
    registry.datasets().register("reshaded", Reshaded)
    Reshaded.shift = 0
    before = _only_cell(datasets=["reshaded"])
    assert _only_cell(datasets=["reshaded"])["run_id"] == before["run_id"]  # stable
    Reshaded.shift = 3  # same name, parameters and version; other images
    after = _only_cell(datasets=["reshaded"])
    assert after["run_id"] != before["run_id"]
    assert after["dataset_content"] != before["dataset_content"]
    # the same data seen by a grey source is another target
    grey = _only_cell(datasets=["reshaded"], sources=["debug:channels=1"])
    assert grey["dataset_content"] != after["dataset_content"]


class FileWeighted(DebugExtractor):
    """The debug extractor whose identity is the hash of a weights file."""

    weights: ClassVar[Path] = Path()

    def identity(self) -> str:
        digest = hashlib.sha256(type(self).weights.read_bytes()).hexdigest()
        return f"{super().identity()}:sha256={digest}"


def test_two_extractor_weight_files_give_two_run_ids(tmp_path):
    registry.extractors().register("file-weighted", FileWeighted)
    FileWeighted.weights = tmp_path / "weights.bin"
    FileWeighted.weights.write_bytes(b"first weights")
    first = _only_cell(extractor="file-weighted")
    FileWeighted.weights.write_bytes(b"other weights")  # same name, same parameters
    second = _only_cell(extractor="file-weighted")
    assert second["run_id"] != first["run_id"]
    FileWeighted.weights.write_bytes(b"first weights")
    assert _only_cell(extractor="file-weighted")["run_id"] == first["run_id"]


# --------------------------------------------------------------------------- records


def _strings(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def test_records_name_no_path_of_the_machine(tmp_path):
    from gtbench.files.assets import cache_dir
    from gtbench.measure.evaluation import reference_cache_path

    results = tmp_path / "results"
    result = gtbench("run", *TINY, "--methods", "source-only,finetune", results=results)
    assert result.exit_code == 0, result.output
    records = list(iter_records(results))
    assert len(records) == 2
    machine = {
        str(Path.home()),
        os.path.realpath(Path.home()),
        tempfile.gettempdir(),
        os.path.realpath(tempfile.gettempdir()),
        str(tmp_path),
        str(cache_dir()),
    }
    for record in records:
        for text in _strings(record):
            assert not any(place in text for place in machine), (record["run_id"], text)
        # the reference cache entry is named by the key the record holds
        key = record["eval"]["reference_cache_key"]
        assert reference_cache_path(cache_dir(), key).is_file()
        assert reference_cache_path(cache_dir(), key).name == f"{key}.pt"


def test_force_keeps_the_good_record_until_the_rerun_succeeds(tmp_path, monkeypatch):
    Versioned.version, Versioned.broken = "1", False
    registry.methods().register("versioned", Versioned)
    args = [*TINY, "--methods", "versioned"]
    assert gtbench("run", *args, results=tmp_path).exit_code == 0
    (run_id,) = _records(tmp_path)
    folder = run_dir(tmp_path, run_id)
    kept = {name: (folder / name).read_bytes() for name in (RECORD, "samples.png")}
    kept["weights"] = (folder / "generator.safetensors").read_bytes()

    Versioned.broken = True
    failed = gtbench("run", *args, "--force", results=tmp_path)
    assert failed.exit_code == 1
    assert "boom" in failed.output and "previous ok record is kept" in failed.output
    assert (folder / RECORD).read_bytes() == kept[RECORD]  # old result untouched
    assert (folder / "samples.png").read_bytes() == kept["samples.png"]
    assert (folder / "generator.safetensors").read_bytes() == kept["weights"]
    failure = json.loads((folder / FAILED_RECORD).read_text())
    assert failure["status"] == "failed" and "boom" in failure["error"]
    assert "boom" in (folder / failure["traceback"]).read_text()
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []
    assert _records(tmp_path)[run_id]["status"] == "ok"  # tables still read the good one
    again = gtbench("run", *args, results=tmp_path)  # not forced: the cell is done
    assert "1 already done" in again.output

    # a rerun failing at the very end (samples written, weights not): nothing replaced
    Versioned.broken = False
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.is_file()}

    def disk_full(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError("disk full")

    monkeypatch.setattr("gtbench.launch.runner._save_weights", disk_full)
    late = gtbench("run", *args, "--force", results=tmp_path)
    assert late.exit_code == 1 and "disk full" in late.output
    for name in ("samples.png", "generator.safetensors", RECORD):
        assert (folder / name).stat().st_mtime_ns == stamps[name], name  # not rewritten
    assert (folder / RECORD).read_bytes() == kept[RECORD]
    monkeypatch.undo()

    fixed = gtbench("run", *args, "--force", results=tmp_path)
    assert fixed.exit_code == 0, fixed.output
    assert not (folder / FAILED_RECORD).exists() and not (folder / TRACEBACK).exists()
    record = json.loads((folder / RECORD).read_text())
    assert record["status"] == "ok" and record["finished_at"] >= failure["finished_at"]
    assert (folder / RECORD).read_bytes() != kept[RECORD]  # replaced by the new success


class Tunable(FineTune):
    """finetune with one parameter."""

    parameters: ClassVar = {"strength": Parameter(1.0, "a made-up knob")}


def test_stale_records_are_matched_to_cells_by_configuration(tmp_path):
    import copy

    from gtbench.launch.sweep import stale_records
    from gtbench.results.records import write_record

    registry.methods().register("tunable", Tunable)
    (cell,) = _plan(methods=["tunable"]).cells

    def record_of(run_id: str, version: str, strength: float) -> dict:
        record = copy.deepcopy({k: v for k, v in cell.items() if k != "train"})
        record.update(run_id=run_id, status="ok", hparams={"train": cell["train"]})
        record["method"].update(version=version, params={"strength": strength})
        return record

    write_record(tmp_path, record_of("older", "0", 1.0))  # same settings, older code
    write_record(tmp_path, record_of("moved", "0", 2.0))  # older code, other default
    write_record(tmp_path, record_of("chosen", "1", 3.0))  # another configuration: not stale
    found = {s.run_id: s for s in stale_records([cell], tmp_path)}
    assert set(found) == {"older", "moved"}
    assert found["older"].exact and found["older"].reason == "method tunable version 0 → 1"
    assert not found["moved"].exact  # listed, never kept by --keep-stale
    assert "strength 2.0 → 1.0" in found["moved"].reason
    assert all(s.cell_run_id == cell["run_id"] for s in found.values())


def test_git_state_says_whether_the_code_differs_from_the_commit(tmp_path):
    import shutil
    import subprocess

    from gtbench.results.provenance import git_state

    if shutil.which("git") is None:
        pytest.skip("git is not installed")

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )

    package = tmp_path / "benchmark" / "gtbench"
    package.mkdir(parents=True)
    (package / "code.py").write_text("A = 1\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "table.csv").write_text("a\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-q", "-m", "start")
    state = git_state(package)
    assert len(state["git_commit"]) == 40 and state["git_dirty"] is False
    (tmp_path / "results" / "table.csv").write_text("b\n")  # tracked results: not code
    (tmp_path / "notes.txt").write_text("untracked\n")
    assert git_state(package)["git_dirty"] is False
    (package / "code.py").write_text("A = 2\n")
    assert git_state(package) == {"git_commit": state["git_commit"], "git_dirty": True}
    assert git_state(tmp_path.parent) == {"git_commit": None, "git_dirty": None}


def test_git_state_never_writes_the_users_git_folder(tmp_path):
    """The dirty check reads without git's optional locks: a plain ``git status`` after a
    file's timestamp changed refreshes and rewrites ``.git/index`` (and could collide with
    the user's own git command holding ``index.lock``)."""
    import os
    import shutil
    import subprocess

    from gtbench.results.provenance import git_state

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    package = tmp_path / "benchmark" / "gtbench"
    package.mkdir(parents=True)
    code = package / "code.py"
    code.write_text("A = 1\n")
    for args in (("init", "-q"), ("add", "."), ("commit", "-q", "-m", "start")):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       cwd=tmp_path, check=True, capture_output=True)  # fmt: skip
    index = tmp_path / ".git" / "index"
    past = index.stat().st_mtime_ns - 10**10
    os.utime(code, ns=(past + 10**9, past + 10**9))  # same content, another timestamp
    os.utime(index, ns=(past, past))  # a stat refresh would rewrite the index now
    before = sorted((p.name, p.stat().st_mtime_ns) for p in (tmp_path / ".git").iterdir())
    assert git_state(package)["git_dirty"] is False
    after = sorted((p.name, p.stat().st_mtime_ns) for p in (tmp_path / ".git").iterdir())
    assert after == before


# --------------------------------------------------------------------------- hardware


def _cpuinfo_model() -> str | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("model name"):
            return " ".join(line.split(":", 1)[1].split())
    return None


def test_records_name_the_cpu_and_the_instruction_set_used(tmp_path):
    from gtbench.results import provenance

    assert gtbench("run", *TINY, "--methods", "finetune", results=tmp_path).exit_code == 0
    (record,) = _records(tmp_path).values()
    found = record["environment"]["hardware"]
    assert found["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    if _cpuinfo_model():
        assert found["cpu"] == _cpuinfo_model()
        assert found["cpu_id"]
    assert "gpu" not in found  # the cell ran on the CPU
    assert set(found["isa_settings"]) <= set(provenance.ISA_VARIABLES)
    assert provenance.machine(record["environment"]) == provenance.current_machine()
    assert found["cpu_capability"] in provenance.machine(record["environment"])


def test_machine_line_of_cpu_gpu_portable_and_old_records():
    from gtbench.results.provenance import PORTABLE_CPU, machine

    cpu = {"cpu": "Some CPU", "cpu_id": "GenuineIntel 6 85 7", "cpu_capability": "AVX2"}
    assert machine({"hardware": cpu}) == "Some CPU [GenuineIntel 6 85 7] (AVX2)"
    assert machine({"hardware": {**cpu, "cpu_capability": "AVX512"}}) != machine({"hardware": cpu})
    gpu = {**cpu, "gpu": "NVIDIA H100", "gpu_driver": "550.54"}
    assert machine({"hardware": gpu}) == "NVIDIA H100 (driver 550.54)"
    portable = {**cpu, "cpu_capability": "DEFAULT", "isa_settings": dict(PORTABLE_CPU)}
    other = {**portable, "cpu": "Other CPU", "cpu_id": "AuthenticAMD 25 17 1"}
    assert machine({"hardware": portable}) == machine({"hardware": other}) == "portable x86"
    # the settings without the capability actually used are not portable
    assert machine({"hardware": {**portable, "cpu_capability": "AVX2"}}) != "portable x86"
    assert machine({"platform": "Linux"}) == machine(None) == "unknown"


def test_gpu_name_driver_and_capability_where_a_gpu_is_used(monkeypatch):
    from types import SimpleNamespace

    from gtbench.results import provenance

    properties = SimpleNamespace(name="NVIDIA Test GPU", major=9, minor=0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: properties)
    monkeypatch.setattr(provenance, "gpu_driver", lambda: "555.42.06")
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 91000)
    found = provenance.hardware("cuda:0")
    assert found["gpu"] == "NVIDIA Test GPU" and found["gpu_capability"] == "9.0"
    assert found["gpu_driver"] == "555.42.06" and found["cudnn"] == 91000
    assert provenance.machine({"hardware": found}) == "NVIDIA Test GPU (driver 555.42.06)"
    text = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024"
    assert provenance.nvidia_driver_of(text) == "550.54.15"
    open_kernel = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.15  Release"
    assert provenance.nvidia_driver_of(open_kernel) == "570.86.15"


def test_portable_cpu_is_refused_once_torch_chose_kernels():
    from gtbench.errors import UsageError
    from gtbench.results.provenance import use_portable_cpu

    if torch.backends.cpu.get_cpu_capability() == "DEFAULT":
        pytest.skip("this CPU's kernels are the baseline ones already")
    saved = dict(os.environ)
    try:
        with pytest.raises(UsageError, match="already uses"):
            use_portable_cpu()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_beside_marks_rows_from_other_hardware(tmp_path):
    """The user's finetune beside another folder holding a --portable-cpu run (a
    subprocess: the instruction sets are read once per process) and an old record without
    hardware: both of those rows are marked †, the user's is not."""
    import shutil
    import subprocess
    import sys

    mine, other = tmp_path / "mine", tmp_path / "other"
    assert gtbench("run", *TINY, "--methods", "finetune", results=mine).exit_code == 0
    command = [sys.executable, "-c", "from gtbench.cli.main import main; main()", "run", *TINY,
               "--methods", "scratch", "--portable-cpu", "--results", str(other)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (portable,) = _records(other).values()
    assert portable["environment"]["hardware"]["cpu_capability"] == "DEFAULT"
    assert portable["environment"]["hardware"]["isa_settings"]["MKL_CBWR"] == "COMPATIBLE"
    # an old record: same cell as the user's but made before records named the hardware
    (own,) = _records(mine).values()
    old = tmp_path / "old"
    shutil.copytree(mine / "runs", old / "runs")
    path = old / "runs" / own["run_id"] / "record.json"
    record = json.loads(path.read_text())
    del record["environment"]["hardware"]
    record["method"] = {**record["method"], "name": "source-only"}
    record["run_id"] = own["run_id"][:-1] + ("0" if own["run_id"][-1] != "0" else "1")
    (old / "runs" / record["run_id"]).mkdir()
    (old / "runs" / record["run_id"] / "record.json").write_text(json.dumps(record))
    shutil.rmtree(old / "runs" / own["run_id"])

    result = gtbench("leaderboard", "--beside", str(other), "--beside", str(old), results=mine)
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert "†" in lines["scratch"] and "†" in lines["source-only"]
    assert "†" not in lines["finetune"]
    assert "records from other hardware" in result.output
    compared = gtbench("compare", "finetune", "scratch", "--beside", str(other), results=mine)
    assert compared.exit_code == 0, compared.output
    assert "scratch: † records from other hardware" in compared.output
    assert "finetune," not in compared.output
    alone = gtbench("leaderboard", results=mine)
    assert "†" not in alone.output and "other hardware" not in alone.output


def _run_in_process(results, *extra, env=None):
    """The default suite's finetune, seed 0, 20 steps, in a process of its own with a cache
    of its own (reference features computed there too, under its instruction sets)."""
    import shutil
    import subprocess
    import sys

    cache = results.parent / f"{results.name}-cache"
    shutil.copytree(Path(os.environ["GTBENCH_CACHE"]) / "downloads", cache / "downloads")
    command = [sys.executable, "-c", "from gtbench.cli.main import main; main()", "run",
               "--methods", "finetune", "--seeds", "0", "--iters", "20", "--n-samples", "200",
               "--launcher", "local", "--results", str(results), *extra]  # fmt: skip
    environment = {**os.environ, "GTBENCH_CACHE": str(cache), **(env or {})}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=environment)
    assert done.returncode == 0, done.stderr
    (record,) = _records(results).values()
    return record


@pytest.mark.slow
def test_portable_cpu_numbers_do_not_follow_the_instruction_set(tmp_path):
    """The claim of docs/results.md, on a short cell: natively, torch's AVX2 and AVX-512
    kernels give other numbers (where the CPU has both: the check can fail); under
    --portable-cpu, the instruction sets torch and MKL are allowed change nothing."""
    if torch.backends.cpu.get_cpu_capability() != "AVX512":
        pytest.skip("needs a CPU whose torch kernels are AVX-512")
    native = _run_in_process(tmp_path / "native")
    avx2 = _run_in_process(tmp_path / "avx2", env={"ATEN_CPU_CAPABILITY": "avx2"})
    assert avx2["environment"]["hardware"]["cpu_capability"] == "AVX2"
    assert native["metrics"]["fid"] != avx2["metrics"]["fid"]
    portable = _run_in_process(tmp_path / "portable", "--portable-cpu")
    capped = _run_in_process(
        tmp_path / "capped",
        "--portable-cpu",
        env={"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
    )
    assert capped["environment"]["hardware"]["cpu_capability"] == "DEFAULT"
    assert portable["metrics"] == capped["metrics"]
    assert portable["metrics"]["fid"] != native["metrics"]["fid"]
