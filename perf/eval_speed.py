"""Side by side, in one process on one CPU thread (what a `process` worker gets): the
evaluation's two costly steps before and after PROTOCOL_VERSION 2 / shapes-cnn v3.

- features of 1000 images: the shapes-cnn network in float64 (v2) vs float32 in fixed
  chunks (v3, what ``ShapesCNNFeatures`` runs);
- KID with 100 subsets of 697 (the cats' evaluation set): torch-fidelity's per-subset
  loop vs gtbench's whole-kernel computation, with their relative difference.

    python perf/eval_speed.py [--repeats 3]

Prints the median wall time of each and the ratio.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
from torch_fidelity.metric_kid import kid_features_to_metric

from gtbench.measure.evaluation import extract_features, kid_from_features, load_feature_extractor
from gtbench.plugin import registry


def _median_s(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    module = load_feature_extractor(registry.extractors().create("shapes-cnn"), cpu)
    network64 = copy.deepcopy(module.network).double().eval()
    images = torch.randint(0, 256, (1000, 3, 32, 32), dtype=torch.uint8)

    def float64_features() -> torch.Tensor:
        with torch.no_grad():
            chunks = [
                network64.embed(batch.double() / 127.5 - 1.0)["fc"] for batch in images.split(64)
            ]
        return torch.cat(chunks)

    old = _median_s(float64_features, args.repeats)
    new = _median_s(lambda: extract_features(module, images, device=cpu), args.repeats)
    ratio = old / new
    print(f"features, 1000 images: float64 {old:.2f} s, float32 chunks {new:.2f} s, {ratio:.1f}×")

    generator = torch.Generator().manual_seed(0)
    fake = torch.randn(1000, 256, generator=generator, dtype=torch.float64)
    real = torch.randn(697, 256, generator=generator, dtype=torch.float64) + 0.1
    reference: dict[str, float] = {}

    def fidelity() -> None:
        reference.update(
            kid_features_to_metric(
                fake, real, kid_subsets=100, kid_subset_size=697, rng_seed=0, verbose=False
            )
        )

    old = _median_s(fidelity, args.repeats)
    ours: list[tuple[float, float]] = []
    new = _median_s(
        lambda: ours.append(kid_from_features(fake, real, subsets=100, subset_size=697, seed=0)),
        args.repeats,
    )
    difference = abs(ours[-1][0] / reference["kernel_inception_distance_mean"] - 1)
    print(
        f"KID, 100 subsets of 697: torch-fidelity loop {old:.2f} s, whole kernels {new:.3f} s, "
        f"{old / new:.0f}× (relative difference of the means {difference:.1e})"
    )


if __name__ == "__main__":
    main()
