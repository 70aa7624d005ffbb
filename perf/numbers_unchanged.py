"""Numbers do not move: recompute every committed record's run id from its stored
configuration, and re-run a few fixed cells, comparing their metrics with a baseline.

    python perf/numbers_unchanged.py ids              # records of results/reference, tuned
    python perf/numbers_unchanged.py cells OUT.json   # re-run the fixed cells, write metrics
    python perf/numbers_unchanged.py compare A.json B.json

``ids`` exits 1 when any recomputed run id differs from the stored one. ``cells`` runs the
cells of :data:`CELLS` (small, seconds each) in a temporary results folder; ``compare``
exits 1 when any metric differs (bit for bit: same machine, same code path expected).
A restructure that moves no number leaves both unchanged; a version bump by another
change moves the run ids (the version is part of the identity) and shows up here too.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = [ROOT / "results" / "reference", ROOT / "results" / "tuned"]


def _run_id_of():
    try:
        from gtbench.plan.identity import run_id_of
    except ImportError:  # before the restructure
        try:
            from gtbench.plan.cells import run_id_of
        except ImportError:
            from gtbench.cells import run_id_of
    return run_id_of


def ids() -> int:
    from gtbench.plan.identity import cell_of  # the current tree's (ids checks this one)

    run_id_of = _run_id_of()
    total = differ = 0
    for folder in FOLDERS:
        for path in sorted((folder / "runs").glob("*/record.json")):
            record = json.loads(path.read_text())
            total += 1
            again = run_id_of(cell_of(record))
            if again != record["run_id"] or path.parent.name != record["run_id"]:
                differ += 1
                print(f"differs: {path.relative_to(ROOT)} -> {again}")
    print(f"{total} records, {total - differ} run ids recomputed equal, {differ} differ")
    return 1 if differ or not total else 0


# The fixed cells: every built-in method on the debug suite (20 steps, seconds per cell),
# one short fine-tuning of a real pretrained source, and two committed reference cells.
METHODS = {
    *("source-only", "scratch", "finetune", "cdc", "minegan", "adam", "rick", "freeze-d"),
    *("diffaugment", "ada", "ewc", "adafm", "l2-sp", "dcl", "bsa", "freeze-g"),
}
CELLS = [
    {"suite": "debug", "methods": sorted(METHODS)},
    {
        "suite": "default",
        "sources": ["animals-dcgan32"],
        "methods": ["finetune"],
        "datasets": ["animals-cat"],
        "seeds": [0],
        "shots": [10],
        "train": {"iters": 20},
        "eval": {"n_samples": 300},
    },
    # two cells of the committed reference results, exactly: their metrics are also
    # compared with the committed records (equal only on the CPU type that made them)
    {"suite": "default", "methods": ["source-only", "finetune"], "seeds": [0]},
]


def cells(out: str) -> int:
    try:
        from gtbench.plan.cells import plan_suite
        from gtbench.plan.suite import load_suite
    except ImportError:
        from gtbench.cells import plan_suite
        from gtbench.suite import load_suite
    try:
        from gtbench.launch.runner import run_cell
    except ImportError:
        from gtbench.runner import run_cell

    found = {}
    with tempfile.TemporaryDirectory() as folder:
        for overrides in CELLS:
            suite = load_suite(overrides["suite"])
            for key in ("sources", "methods", "datasets", "seeds", "shots"):
                if key in overrides:
                    suite.override(**{key: overrides[key]})
            for section in ("train", "eval"):
                if section in overrides:
                    suite.override(section, **overrides[section])
            suite.curve = 0
            for cell in plan_suite(suite).cells:
                cell["keep_weights"] = False
                outcome = run_cell(cell, folder)
                path = Path(folder) / "runs" / cell["run_id"] / "record.json"
                record = json.loads(path.read_text())
                found[cell["run_id"]] = {
                    "label": " ".join(cell[k]["name"] for k in ("source", "method", "dataset")),
                    "status": outcome.status,
                    "metrics": record["metrics"],
                    "reference_key": record["eval"].get("reference_key"),
                }
                committed = ROOT / "results" / "reference" / "runs" / cell["run_id"] / "record.json"
                if committed.is_file():
                    committed_record = json.loads(committed.read_text())
                    metrics = committed_record["metrics"]
                    same = sum(metrics.get(k) == v for k, v in record["metrics"].items())
                    key = committed_record["eval"].get("reference_key")
                    found[cell["run_id"]]["committed"] = {
                        "fid": metrics.get("fid"),
                        "equal_metric_values": f"{same}/{len(record['metrics'])}",
                        "reference_key_equal": record["eval"].get("reference_key") == key,
                    }
                print(
                    cell["run_id"],
                    found[cell["run_id"]]["label"],
                    outcome.status,
                    record["metrics"].get("fid"),
                    outcome.error or "",
                    flush=True,
                )
    Path(out).write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    return 0


def compare(a: str, b: str) -> int:
    old, new = json.loads(Path(a).read_text()), json.loads(Path(b).read_text())
    problems = [f"run id {k} only in {a}" for k in old.keys() - new.keys()]
    problems += [f"run id {k} only in {b}" for k in new.keys() - old.keys()]
    equal = 0
    for key in old.keys() & new.keys():
        for name, value in old[key]["metrics"].items():
            if new[key]["metrics"].get(name) != value:
                problems.append(f"{key} {name}: {value} -> {new[key]['metrics'].get(name)}")
            else:
                equal += 1
        keys = old[key].get("reference_key"), new[key].get("reference_key")
        if None not in keys and keys[0] != keys[1]:
            problems.append(f"{key} reference_key: {keys[0]} -> {keys[1]}")
    print("\n".join(problems) or f"{len(old)} cells, {equal} metric values equal bit for bit")
    return 1 if problems else 0


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    sys.exit({"ids": ids, "cells": cells, "compare": compare}[command](*args))
