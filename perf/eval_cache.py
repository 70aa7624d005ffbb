"""Time two evaluations of the same target: the first computes the reference features of
the evaluation set (cache miss), the second reads them from the disk cache (hit).

    python perf/eval_cache.py                                  # animals-cat, debug
    python perf/eval_cache.py --source debug --dataset debug --n-samples 200
    python perf/eval_cache.py --extractor inception-v3-compat:weights=PATH

The cache folder is a fresh temporary one unless ``--cache-dir`` is given, so the first
evaluation always misses. The feature network is built before the clock starts, so the
difference between the two is the reference features alone.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from gtbench.launch.runner import MatchedTarget
from gtbench.measure.evaluation import EvalSettings, evaluate, load_feature_extractor
from gtbench.plugin import registry
from gtbench.train.device import default_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="animals-dcgan32")
    parser.add_argument("--dataset", default="animals-cat")
    parser.add_argument("--extractor", default="debug")
    parser.add_argument("--shots", type=int, default=10)
    parser.add_argument("--n-samples", type=int, default=1000)
    parser.add_argument("--kid-subset-size", type=int, default=1000)
    parser.add_argument("--kid-subsets", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else default_device()
    cache = args.cache_dir or Path(tempfile.mkdtemp(prefix="gtbench-eval-cache-"))

    source = registry.sources().create(args.source)
    extractor = registry.extractors().create(args.extractor)
    extractor.check_available()
    info = source.info
    target = MatchedTarget(registry.datasets().create(args.dataset), info.resolution, info.channels)
    shots = target.images()[list(target.split(args.shots, 0).train)]
    generator = source.load().generator.to(device)
    settings = EvalSettings(args.n_samples, args.kid_subset_size, args.kid_subsets, args.batch_size)

    start = time.perf_counter()
    load_feature_extractor(extractor, device)
    print(f"feature network built in {time.perf_counter() - start:.2f} s ({extractor.name})")
    print(
        f"{args.source} -> {args.dataset}: {len(target.evaluation_images())} evaluation "
        f"images, {args.n_samples} samples, device {device}, cache {cache}"
    )
    for attempt in ("first", "second"):
        start = time.perf_counter()
        result = evaluate(
            generator,
            target,
            shots,
            extractor,
            settings,
            seed=0,
            device=device,
            cache_dir=cache,
        )
        elapsed = time.perf_counter() - start
        parts = ", ".join(f"{k} {v:.2f}" for k, v in result.settings["timings"].items())
        print(
            f"{attempt} evaluation: {elapsed:.2f} s (reference cache "
            f"{result.settings['reference_cache']}; {parts}); fid {result.metrics['fid']:.6g}"
        )


if __name__ == "__main__":
    main()
