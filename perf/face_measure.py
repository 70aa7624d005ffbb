"""Is the face pair measurable offline? KID of reference sets against the 70 LFW
evaluation faces, in the features of each extractor given, so one can see whether an
extractor orders them as a face metric should (real faces nearest, then synthetic faces,
then non-faces, then noise) and what judging colour samples against grey faces adds.

    python perf/face_measure.py                          # shapes-cnn fc and pool, debug
    python perf/face_measure.py --extractors shapes-cnn --n-samples 1000
    python perf/face_measure.py --generator results/runs/RUN_ID   # an adapted generator too

Sets: the 30 shot-pool faces (real vs real), DigiFace source samples judged in grey (the
harness's rule for a grey target) and in colour against the grey faces repeated to RGB
(the old treatment), the 100 non-faces of ``skimage.data.lfw_subset()``, uniform noise;
with ``--generator``, the kept generator of a run, judged in grey. KID in the
leaderboard's units (no scaling), mean ± std over 100 subsets of min(70, n) images. FID
is printed for reference only: 70 evaluation images are fewer than the feature
dimensions, so it is not valid.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from gtbench.measure.evaluation import (
    extract_features,
    fid_from_features,
    generate_images,
    kid_from_features,
    load_feature_extractor,
)
from gtbench.plugin import registry
from gtbench.plugin.images import match_format

CPU = torch.device("cpu")


def reference_sets(n_samples: int, generator_dir: str | None) -> dict[str, torch.Tensor]:
    """name → uint8 N×C×64×64 images (C = 1 for grey, 3 for colour)."""
    from skimage.data import lfw_subset

    from gtbench.results.generate import load_generator

    lfw = registry.datasets().create("lfw-faces")
    source = registry.sources().create("digiface-dcgan64").load().generator
    samples = generate_images(source, n_samples, seed=0, device=CPU)
    non_faces = torch.from_numpy((lfw_subset()[100:] * 255).round().astype(np.uint8))[:, None]
    sets = {
        "LFW shot-pool faces (real)": lfw.images()[lfw.shot_pool()],
        "DigiFace source, in grey": match_format(samples, 1, 64),
        "DigiFace source, colour vs grey RGB": samples,
        "LFW non-faces": match_format(non_faces, 1, 64),
        "uniform noise": (torch.rand(200, 1, 64, 64) * 255).to(torch.uint8),
    }
    if generator_dir:
        run = Path(generator_dir)
        adapted = load_generator(run.name, run.parent.parent, CPU)
        sets[f"{run.name}, in grey"] = match_format(
            generate_images(adapted, n_samples, seed=0, device=CPU), 1, 64
        )
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extractors", default="shapes-cnn:layer=fc,shapes-cnn:layer=pool,debug")
    parser.add_argument("--n-samples", type=int, default=500)
    parser.add_argument("--generator", help="a run folder with a kept generator")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    evaluation = registry.datasets().create("lfw-faces").evaluation_images()
    sets = reference_sets(args.n_samples, args.generator)
    print(f"against the {len(evaluation)} LFW evaluation faces; KID (mean ± std)")
    for spec in args.extractors.split(","):
        module = load_feature_extractor(registry.extractors().create(spec), CPU)
        real = extract_features(module, evaluation, device=CPU)
        for name, images in sets.items():
            reference = real
            if images.shape[1] == 3:  # the old treatment: grey faces repeated to RGB
                reference = extract_features(module, evaluation.repeat(1, 3, 1, 1), device=CPU)
            fake = extract_features(module, images, device=CPU)
            size = min(len(reference), len(fake))
            mean, std = kid_from_features(fake, reference, subsets=100, subset_size=size, seed=0)
            fid = fid_from_features(fake, reference)
            print(
                f"{spec:22s} {name:38s} n={len(fake):4d}  KID {mean:10.4g} ± {std:9.2g}  "
                f"FID {fid:8.1f} (not valid)"
            )


if __name__ == "__main__":
    main()
