"""The committed reference's compute envelope, from the records it already holds.

    python perf/reference_envelope.py [RESULTS] [--workers 2] [--suite full]

For each part of the suite (target × budget): the cells it plans, the cells with an `ok`
record in RESULTS, their mean wall seconds per cell (`timings.total_s`: setup, training,
evaluation, saving), and the part's wall hours at WORKERS cells at a time. A part with no
finished cell is projected from a finished part of the same source: its training seconds
scaled by the step ratio, its other seconds as measured (flagged `projected`). The last
line sums the parts: what regenerating the whole suite costs on this machine.

`--per-method` splits each part by method and adds the records' CPU seconds per cell
(`timings.cpu_s`, which a shared machine inflates much less than wall time) and the largest
peak RSS: `--suite default --per-method` is the main job's cost, method by method.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from statistics import fmean


def _records(results: Path) -> dict[str, dict]:
    found = {}
    for path in sorted(results.glob("runs/*/record.json")):
        record = json.loads(path.read_text())
        if record.get("status") == "ok":
            found[record["run_id"]] = record
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="results/reference")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--suite", default="full")
    parser.add_argument("--measured-in", action="append", default=[], metavar="FOLDER")
    parser.add_argument("--per-method", action="store_true", help="one line per method")
    args = parser.parse_args(argv)

    from gtbench.plan.cells import plan_suite
    from gtbench.plan.suite import load_suite
    from gtbench.plugin import registry

    suite = load_suite(args.suite)
    suite.methods = list(registry.methods().names())
    records = _records(Path(args.results))
    parts: dict[tuple[str, ...], dict] = defaultdict(lambda: {"cells": 0, "done": [], "rss": []})
    for cell in plan_suite(suite).cells:
        key = (cell["source"]["name"], cell["dataset"]["name"], cell.get("budget", ""))
        if args.per_method:
            key += (cell["method"]["name"],)
        part = parts[key]
        part["cells"] += 1
        if cell["train"]:
            part["iters"] = cell["train"]["iters"]
        if cell["run_id"] in records:
            part["done"].append(records[cell["run_id"]]["timings"])
            part["rss"].append(records[cell["run_id"]].get("memory", {}).get("peak_rss_mb", 0))

    measured = {k: p for k, p in parts.items() if p["done"]}
    for folder in args.measured_in:  # other runs of a part's source and target
        for record in _records(Path(folder)).values():
            iters = record["hparams"]["train"]["iters"]
            key = (record["source"]["name"], record["dataset"]["name"], f"check {iters}")
            extra = measured.setdefault(key, {"done": [], "iters": iters})
            extra["done"].append(record["timings"])
    cost = f" {'cpu s':>7} {'peak MB':>7}" if args.per_method else ""
    width = 50 if args.per_method else 38
    print(f"{'source → target':{width}} {'budget':8} {'steps':>5} {'cells':>5} {'done':>5} "
          f"{'s/cell':>7} {'hours':>6}{cost}")  # fmt: skip
    total = 0.0
    for key, part in parts.items():
        note = ""
        if part["done"]:
            per_cell = fmean(t["total_s"] for t in part["done"])
        else:
            same = [p for k, p in measured.items() if k[0] == key[0]]
            same = [p for k, p in measured.items() if k[:2] == key[:2]] or same
            if not same:
                print(f"{key[0]} → {key[1]:20} {key[2]:8} nothing measured for this source")
                continue
            # the nearest step count, then the most cells
            base = min(same, key=lambda p: (abs(p["iters"] - part["iters"]), -len(p["done"])))
            train = fmean(t["train_s"] for t in base["done"])
            rest = fmean(t["total_s"] - t["train_s"] for t in base["done"])
            per_cell, note = train * part["iters"] / base["iters"] + rest, "  projected"
        hours = per_cell * part["cells"] / args.workers / 3600
        total += hours
        name = f"{key[0]} → {key[1]}" + (f" · {key[3]}" if args.per_method else "")
        if args.per_method and part["done"]:
            cpu = fmean(t.get("cpu_s", 0.0) for t in part["done"])
            note = f" {cpu:7.1f} {max(part['rss']):7.0f}{note}"
        print(f"{name:{width}} {key[2]:8} {part.get('iters', 0):5d} {part['cells']:5d} "
              f"{len(part['done']):5d} {per_cell:7.1f} {hours:6.2f}{note}")  # fmt: skip
    print(f"{'total':{width}} {'':8} {'':5} {sum(p['cells'] for p in parts.values()):5d} "
          f"{sum(len(p['done']) for p in parts.values()):5d} {'':7} {total:6.2f} "
          f"(at {args.workers} cells at a time)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
