"""Golden numbers: a fixed tiny cell per built-in method, on the debug source and on a
BatchNorm source (animals-dcgan32), runs here, and its numbers (metrics, method metrics,
counted steps) are compared with the committed ones in ``tests/golden/numbers.json``.

A change that moves them must bump the version of what it changed (the method's
``version``, the trainer's ``TRAINER_VERSION``, ...) and regenerate the values in the
same commit::

    python -m pytest tests/test_golden.py --update-golden

The committed values are keyed by the versions that made them, so a bump without
regenerating fails too. Numbers agree to the last digit only on the same machine type
with the same package versions (docs/results.md, reproducibility); the comparison allows
a relative 1e-10, which float64 rounding in the evaluation never reaches (1e-16..1e-14
measured) and a real change always exceeds (a 1 % change of a method's or the trainer's
hyper-parameter: 1e-6 and up). On another machine type or other package versions the
last digits differ anyway (1e-7..1e-3 measured), so there a difference is a skip that
says so, not a failure.
"""

from __future__ import annotations

import inspect
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from gtbench.measure.eval_settings import PROTOCOL_VERSION
from gtbench.plan.cells import plan_suite
from gtbench.plan.suite import suite_from_mapping
from gtbench.plugin import registry
from gtbench.results import provenance
from gtbench.train.trainer import TRAINER_VERSION

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "numbers.json"
REGENERATE = "python -m pytest tests/test_golden.py --update-golden"
# |a - b| <= REL_TOL * max(|a|, |b|) (+ ABS_TOL for values at zero): see the docstring
REL_TOL = 1e-10
ABS_TOL = 1e-15
PACKAGES = ("torch", "numpy", "scipy", "torch-fidelity")  # their versions move last digits

# The fixed cells: every built-in method (its defaults, with the ``example_params`` the
# registry-wide tests use) on each source, a few steps, a small evaluation in the debug
# extractor's features (fast; these numbers pin the code, they rank nothing).
SUITES: dict[str, dict[str, Any]] = {
    "debug": {
        "sources": ["debug"],
        "methods": "all built-in",
        "datasets": ["debug"],
        "extractor": "debug",
        "shots": [10],
        "seeds": [0],
        "train": {"iters": 20, "batch_size": 8},
        "eval": {"n_samples": 200, "kid_subset_size": 100},
    },
    "animals-dcgan32": {  # BatchNorm in G and D, a real pretrained checkpoint
        "sources": ["animals-dcgan32"],
        "methods": "all built-in",
        "datasets": ["animals-cat"],
        "extractor": "debug",
        "shots": [10],
        "seeds": [0],
        "train": {"iters": 8, "batch_size": 8},
        "eval": {"n_samples": 128, "kid_subset_size": 100},
    },
}


def _methods(chosen: str | list[str]) -> list[dict[str, Any]]:
    """The built-in methods (``chosen``: some of them by name) with ``example_params``."""
    found = []
    for name in sorted(registry.methods().names()):
        cls = registry.methods().get(name)
        builtin = cls.__module__.startswith("gtbench_plugins.")
        if builtin and (chosen == "all built-in" or name in chosen):
            found.append({"name": name, **dict(cls.example_params)})
    return found


def planned_cells() -> dict[str, dict[str, Any]]:
    """``source/method`` → its planned cell (a method a source cannot run is left out)."""
    cells = {}
    for part, settings in SUITES.items():
        mapping = {**settings, "methods": _methods(settings["methods"]), "keep_weights": False}
        for cell in plan_suite(suite_from_mapping(mapping, f"golden {part}")).cells:
            cells[f"{cell['source']['name']}/{cell['method']['name']}"] = cell
    return cells


def versions_of(cell: dict[str, Any]) -> dict[str, str | None]:
    """Every version that may move a golden cell's numbers (trainer: None, no training)."""
    return {
        "method": cell["method"]["version"],
        "trainer": cell["trainer_version"],
        "protocol": cell["protocol_version"],
        "source": cell["source"]["version"],
        "dataset": cell["dataset"]["version"],
        "extractor": cell["eval"]["extractor"]["version"],
    }


def numbers_of(record: dict[str, Any]) -> dict[str, Any]:
    """What a record's golden entry pins: every metric and method metric, the adaptation
    classifier's own numbers (its accuracy decides whether ``adaptation`` is reported at
    all) and the steps the trainer counted. Timings and anything else that varies from
    run to run are not numbers of the cell."""
    found: dict[str, Any] = {f"metrics.{k}": v for k, v in record["metrics"].items()}
    found.update({f"method_metrics.{k}": v for k, v in (record["method_metrics"] or {}).items()})
    found.update(
        {
            f"eval.{k}": v
            for k, v in record["eval"].items()
            if k.startswith("adaptation_") and isinstance(v, int | float)
        }
    )
    found.update({name: record[name] for name in ("g_steps", "d_steps", "warmup_steps")})
    return found


def platform_of(record: dict[str, Any]) -> dict[str, Any]:
    """What decides the last digits besides the code: machine type, package versions."""
    environment = record.get("environment") or {}
    packages = environment.get("packages") or {}
    return {
        "machine": provenance.machine(environment),
        "torch_threads": environment.get("torch_threads"),
        **{name: packages.get(name) for name in PACKAGES},
    }


def run_golden_cells(folder: Path) -> dict[str, Any]:
    """Run every golden cell in ``folder``: the golden file's content for this code."""
    from threadpoolctl import threadpool_limits

    from gtbench.launch.runner import run_cell

    cells, platform = {}, None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):  # BLAS/OpenMP threads move last digits (and cost time here)
            for key, cell in planned_cells().items():
                outcome = run_cell(cell, folder)
                assert outcome.status == "ok", f"golden cell {key}: {outcome.error}"
                path = folder / "runs" / cell["run_id"] / "record.json"
                record = json.loads(path.read_text())
                platform = platform or platform_of(record)
                cells[key] = {
                    "versions": versions_of(cell),
                    "method_params": cell["method"]["params"],
                    "numbers": numbers_of(record),
                }
    finally:
        torch.set_num_threads(threads)
    return {"platform": platform, "cells": cells}


def same_number(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, int | float):
        return a == b
    if not isinstance(b, int | float):
        return False
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def _method_advice(name: str) -> str:
    cls = registry.methods().get(name)
    try:
        where = Path(inspect.getsourcefile(cls) or "").resolve().relative_to(ROOT)
    except ValueError:
        where = Path(cls.__module__)
    if "version" in vars(cls):
        return f"{name}: `version` of {cls.__name__} in {where} (now {cls.version!r})"
    return f'{name}: add `version = "2"` to {cls.__name__} in {where} (inherits "1")'


def _bump_advice(moved: list[str], committed: dict[str, Any]) -> list[str]:
    """Which versions to bump, judged by which cells moved."""
    untrained = sorted(k for k in moved if committed[k]["versions"]["trainer"] is None)
    methods = sorted({key.split("/", 1)[1] for key in set(moved) - set(untrained)})
    advice = []
    if untrained:
        advice.append(
            f"cells that do not train moved ({', '.join(untrained)}): if the evaluation "
            "changed, PROTOCOL_VERSION in benchmark/gtbench/measure/eval_settings.py (now "
            f"{PROTOCOL_VERSION!r}); if a source, dataset or extractor did, its `version`"
        )
    if len(methods) > 1:
        advice.append(
            f"cells of {len(methods)} methods moved: if the shared trainer changed, "
            f"TRAINER_VERSION in benchmark/gtbench/train/trainer.py (now {TRAINER_VERSION!r})"
        )
    if len(methods) > 3:
        advice.append(f"if methods changed instead, each one's `version`: {', '.join(methods)}")
    else:
        advice += [f"if the method changed, {_method_advice(name)}" for name in methods]
    return advice


def golden_problems(committed: dict[str, Any], current: dict[str, Any]) -> tuple[list[str], str]:
    """Compare the committed golden file's content with this code's: (failure lines,
    skip reason). A skip only where every difference is in numbers and the committed
    values come from another machine type or other package versions."""
    old, new = committed.get("cells", {}), current["cells"]
    problems: list[str] = []
    if committed.get("settings", SUITES) != SUITES:
        problems.append("the golden cells' settings (SUITES) changed: regenerate, no bump needed")
    missing, gone = sorted(new.keys() - old.keys()), sorted(old.keys() - new.keys())
    if missing:
        problems.append(f"golden cells without committed values: {', '.join(missing)}")
    if gone:
        problems.append(f"committed values of cells that no longer run: {', '.join(gone)}")
    bumped, moved, grown = [], {}, {}
    for key in sorted(old.keys() & new.keys()):
        was, now = old[key]["versions"], new[key]["versions"]
        changed = [f"{k} {was.get(k)!r} -> {now[k]!r}" for k in now if was.get(k) != now[k]]
        if changed:
            bumped.append(f"  {key}: {', '.join(changed)}")
            continue
        a, b = old[key]["numbers"], new[key]["numbers"]
        lines = [
            f"{name}: {a[name]!r} -> {b[name]!r}"
            for name in sorted(a.keys() & b.keys())
            if not same_number(a[name], b[name])
        ]
        if lines:
            params_a, params_b = old[key].get("method_params", {}), new[key]["method_params"]
            changed_params = sorted(
                k for k in params_a.keys() | params_b.keys() if params_a.get(k) != params_b.get(k)
            )
            if changed_params:
                shown = ", ".join(
                    f"{k} {params_a.get(k)!r} -> {params_b.get(k)!r}" for k in changed_params
                )
                lines.insert(0, f"method defaults changed: {shown}")
            moved[key] = lines
        added = [f"+{n}" for n in sorted(b.keys() - a.keys())]
        added += [f"-{n}" for n in sorted(a.keys() - b.keys())]
        if added:
            grown[key] = added
    if bumped:
        problems.append(
            "versions were bumped but the golden numbers were not regenerated:\n"
            + "\n".join(bumped)
        )
    if moved:
        if not problems and not grown and committed.get("platform") != current["platform"]:
            return [], (
                f"{len(moved)} golden cells differ, but the committed values were made on "
                f"{committed.get('platform')} and this is {current['platform']}: numbers "
                "agree to the last digits only on the same machine type and package versions "
                f"(docs/results.md); to compare here, regenerate: {REGENERATE}"
            )
        detail = []
        for key, lines in moved.items():
            detail.append(f"  {key}:")
            detail += [f"    {line}" for line in lines[:5]]
            if len(lines) > 5:
                detail.append(f"    ... {len(lines) - 5} more")
        problems.append(
            f"numbers moved without a version bump in {len(moved)} of {len(new)} golden cells "
            f"(relative tolerance {REL_TOL:g}):\n"
            + "\n".join(detail)
            + "\nA change that moves numbers must bump the version of what changed, in the "
            "same commit as the regenerated values; bump:\n"
            + "\n".join(f"  - {line}" for line in _bump_advice(sorted(moved), old))
        )
    if grown:
        keys = sorted(grown)
        problems.append(
            f"records gained or lost numbers in {len(keys)} golden cells "
            f"({keys[0]}: {' '.join(grown[keys[0]])}); this alone needs no version bump"
        )
    if problems:
        problems.append(
            f"Regenerate the golden numbers and commit them with the change:\n  {REGENERATE}"
        )
    return problems, ""


def test_golden_numbers(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    current = run_golden_cells(tmp_path)
    if request.config.getoption("--update-golden"):
        GOLDEN.parent.mkdir(exist_ok=True)
        about = (
            "Numbers of tests/test_golden.py's fixed cells, keyed by the versions that made "
            f"them; regenerate with `{REGENERATE}` in the commit that bumps the version of "
            "whatever moved them."
        )
        content = {"about": about, "rel_tol": REL_TOL, "settings": SUITES, **current}
        GOLDEN.write_text(json.dumps(content, indent=1, sort_keys=True) + "\n")
        pytest.skip(f"wrote {len(current['cells'])} golden cells to {GOLDEN.relative_to(ROOT)}")
    committed = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}
    problems, skip = golden_problems(committed, current)
    if skip:
        pytest.skip(skip)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# The comparison itself, on made-up golden files (fast): the messages a developer reads.


def _golden(**numbers: float) -> dict[str, Any]:
    trained = {"method": "1", "trainer": TRAINER_VERSION, "protocol": PROTOCOL_VERSION}
    cells = {
        "debug/finetune": {"versions": dict(trained), "method_params": {}, "numbers": {}},
        "debug/l2-sp": {"versions": dict(trained, method="2"), "method_params": {"weight_g": 1.0}},
        "debug/source-only": {"versions": dict(trained, trainer=None), "method_params": {}},
    }
    for cell in cells.values():
        cell["numbers"] = {"metrics.fid": 2.5, "g_steps": 20, **numbers}
    return {"settings": SUITES, "platform": {"machine": "here"}, "cells": cells}


def _with(golden: dict[str, Any], key: str, part: str, **values: Any) -> dict[str, Any]:
    changed = json.loads(json.dumps(golden))
    changed["cells"][key][part].update(values)
    return changed


def test_equal_numbers_pass_and_float64_rounding_is_tolerated() -> None:
    golden = _golden()
    assert golden_problems(golden, golden) == ([], "")
    rounded = _with(golden, "debug/l2-sp", "numbers", **{"metrics.fid": 2.5 * (1 + 1e-14)})
    assert golden_problems(golden, rounded) == ([], "")


def test_a_moved_number_fails_naming_the_version_to_bump_and_the_command() -> None:
    golden = _golden()
    moved = _with(golden, "debug/l2-sp", "numbers", **{"metrics.fid": 2.5 * (1 + 1e-9)})
    moved = _with(moved, "debug/l2-sp", "method_params", weight_g=2.0)
    problems, skip = golden_problems(golden, moved)
    text = "\n".join(problems)
    assert not skip
    assert "numbers moved without a version bump in 1 of 3 golden cells" in text
    assert "method defaults changed: weight_g 1.0 -> 2.0" in text
    assert "l2-sp: `version` of L2SP in plugins/gtbench_plugins/methods/l2_sp.py" in text
    assert "TRAINER_VERSION" not in text  # one method moved, not several
    assert REGENERATE in text


def test_several_methods_moved_name_the_trainer_and_untrained_cells_the_protocol() -> None:
    golden = _golden()
    moved = golden
    for key in ("debug/finetune", "debug/l2-sp"):
        moved = _with(moved, key, "numbers", g_steps=19)
    text = "\n".join(golden_problems(golden, moved)[0])
    assert (
        f"TRAINER_VERSION in benchmark/gtbench/train/trainer.py (now {TRAINER_VERSION!r})" in text
    )
    assert "PROTOCOL_VERSION" not in text
    moved = _with(moved, "debug/source-only", "numbers", **{"metrics.fid": 3.0})
    assert "PROTOCOL_VERSION" in "\n".join(golden_problems(golden, moved)[0])


def test_a_bump_without_regenerating_fails_naming_the_versions() -> None:
    golden = _golden()
    bumped = _with(golden, "debug/l2-sp", "versions", method="3")
    problems, skip = golden_problems(golden, bumped)
    assert not skip
    assert "versions were bumped but the golden numbers were not regenerated" in problems[0]
    assert "debug/l2-sp: method '2' -> '3'" in problems[0]
    assert REGENERATE in problems[-1]


def test_a_new_metric_asks_to_regenerate_without_a_bump() -> None:
    golden = _golden()
    grown = _with(golden, "debug/finetune", "numbers", **{"metrics.adaptation": 0.5})
    text = "\n".join(golden_problems(golden, grown)[0])
    assert "+metrics.adaptation" in text and "needs no version bump" in text


def test_other_machine_types_skip_instead_of_failing() -> None:
    golden = _golden()
    elsewhere = _with(golden, "debug/finetune", "numbers", **{"metrics.fid": 2.6})
    elsewhere["platform"] = {"machine": "elsewhere"}
    problems, skip = golden_problems(golden, elsewhere)
    assert problems == [] and "same machine type" in skip
    # a version bump without regenerating fails on any machine
    elsewhere = _with(elsewhere, "debug/l2-sp", "versions", method="3")
    assert golden_problems(golden, elsewhere)[0]
