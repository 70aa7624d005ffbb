"""An independent check of the adaptation measure, in pixel space rather than in the
extractor's features (docs/leaderboard.md, "Read the digits' long rows with the pictures"):

    python docs/check_adaptation.py RESULTS --dataset digits --budget long \\
        --methods finetune,cdc,dcl,ewc,diffaugment,source-only

The adaptation measure votes by nearest neighbours in the `shapes-cnn` features, the
features FID reads too; where both disagree with the sample grids, a second opinion that
shares nothing with them says which to trust. This one fits a logistic regression on HOG
descriptors (edge orientations, grey) of the source's domain images (a fixed draw of its
pretraining set, as many as the target side and at least 500) against the target's shot
pool and validation images — never its evaluation images — prints its cross-validated
balanced accuracy, then the share of each run's samples it puts in the target beside the
record's ``adaptation``. It needs the runs' generator weights (``--keep-weights``, the
default of `gtbench run`); the committed records carry none, so rerun a cell to check it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

SAMPLES = 500  # per run
SAMPLE_SEED = 1  # not the evaluation's sample seed: a fresh draw of the same generator
SOURCE_SEED = 0


def hog_features(images: torch.Tensor) -> np.ndarray:
    """HOG descriptors of uint8 N×C×H×W images, judged in grey."""
    from skimage.feature import hog

    grey = images.float().mean(1).numpy() / 255.0
    return np.stack(
        [hog(im, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2)) for im in grey]
    )


def main(argv: list[str]) -> int:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    from gtbench.measure import evaluation as ev
    from gtbench.plan.cells import make_plugin
    from gtbench.plugin import registry
    from gtbench.plugin.images import match_format
    from gtbench.plugin.spec import PluginSpec
    from gtbench.results.generate import load_generator
    from gtbench.results.leaderboard import run_rows
    from gtbench.results.records import RECORD, read_record, run_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--budget", default=None, help="keep one named budget")
    parser.add_argument("--methods", default=None, help="comma-separated method names")
    args = parser.parse_args(argv)
    methods = set(args.methods.split(",")) if args.methods else None

    runs = run_rows(args.results)
    if not runs.empty:
        keep = (runs["status"] == "ok") & (runs["dataset"] == args.dataset)
        if args.budget:
            keep &= runs["budget"] == args.budget
        if methods:
            keep &= runs["method"].str.split(":").str[0].isin(methods)
        runs = runs[keep]
    if runs.empty:
        print(f"no finished runs of {args.dataset} in {args.results}", file=sys.stderr)
        return 1

    target = registry.datasets().create(PluginSpec(args.dataset, {}))
    first = read_record(run_dir(args.results, runs["run_id"].iloc[0]) / RECORD)
    domain = make_plugin("source", first["source"]).domain_dataset
    if not domain:
        print("the source names no pretraining dataset: nothing real to fit", file=sys.stderr)
        return 1
    others = registry.datasets().create(PluginSpec(domain, {}))
    resolution = target.info.resolution
    indices = target.shot_pool() + (target.validation_indices() or [])
    target_side = match_format(target.images()[indices], 1, resolution)
    pool = others.images()
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(SOURCE_SEED))
    source_side = match_format(pool[order[: max(len(target_side), 500)]], 1, resolution)
    x = np.concatenate([hog_features(source_side), hog_features(target_side)])
    y = np.r_[np.zeros(len(source_side)), np.ones(len(target_side))]
    classifier = LogisticRegression(max_iter=2000, class_weight="balanced")
    accuracy = cross_val_score(classifier, x, y, cv=5, scoring="balanced_accuracy").mean()
    print(
        f"HOG + logistic regression: {domain} ({len(source_side)}) against {args.dataset}'s "
        f"shot pool and validation split ({len(target_side)}); "
        f"5-fold balanced accuracy {accuracy:.3f}"
    )
    classifier.fit(x, y)
    print("method        seed  budget    HOG target share  adaptation (record)")
    for run in runs.itertuples():
        generator = load_generator(run.run_id, args.results)
        samples = ev.generate_images(
            generator, SAMPLES, seed=SAMPLE_SEED, device=torch.device("cpu")
        )
        share = classifier.predict(hog_features(match_format(samples, 1, resolution))).mean()
        print(
            f"{run.method:12}  {run.seed:4}  {run.budget or '-':8}"
            f"  {share:16.3f}  {run.adaptation:.3f}"
        )
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main(sys.argv[1:]))
