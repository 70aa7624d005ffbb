"""The adaptation measure: a source-vs-target classifier's share, trusted only when the
classifier separates the domains, trained never on evaluation images."""

from __future__ import annotations

import json
import math

import pytest
import torch

from gtbench.measure import adaptation
from gtbench.measure.adaptation import MIN_ACCURACY, fit_domain_classifier
from gtbench.plugin.images import image_sha256s
from gtbench_plugins.datasets.debug import DebugDataset
from gtbench_plugins.extractors.debug import DebugExtractor
from gtbench_plugins.sources.debug import DebugSource
from tests.helpers import FAST, gtbench

CPU = torch.device("cpu")


def _clouds(n_source=400, n_target=200, dim=32, gap=4.0, seed=0):
    """Two noisy clouds in different directions (``gap`` 0: the same cloud)."""
    gen = torch.Generator().manual_seed(seed)
    source = torch.randn(n_source, dim, generator=gen)
    target = torch.randn(n_target, dim, generator=gen)
    source[:, 0] += 4.0
    target[:, 0] += 4.0 - gap
    target[:, 1] += gap
    return source, target, gen


def test_separable_domains_give_a_trusted_classifier_and_the_planted_share():
    source, target, gen = _clouds()
    classifier = fit_domain_classifier(source, target)
    assert classifier.valid and classifier.accuracy >= MIN_ACCURACY
    # new draws: 30 % from the target cloud, 70 % from the source cloud
    fresh_source, fresh_target, _ = _clouds(700, 300, seed=1)
    measured = classifier.measure(torch.cat([fresh_source, fresh_target]))
    assert measured["adaptation"] == pytest.approx(0.3, abs=0.05)
    assert classifier.measure(fresh_target)["adaptation"] > 0.9
    assert classifier.measure(fresh_source)["adaptation"] < 0.1
    assert 0 < measured["adaptation_prob"] < 1


def test_inseparable_domains_report_no_share_and_say_why():
    source, target, _ = _clouds(gap=0.0)
    classifier = fit_domain_classifier(source, target)
    assert not classifier.valid and classifier.accuracy < MIN_ACCURACY
    assert "do not separate" in classifier.reason
    assert math.isnan(classifier.measure(target)["adaptation"])
    assert classifier.settings()["adaptation_valid"] is False


def test_too_few_images_to_train_it():
    source, target, _ = _clouds(n_target=6)
    classifier = fit_domain_classifier(source, target)
    assert not classifier.valid and "too few" in classifier.reason


def _spy_on_features(monkeypatch) -> dict[str, torch.Tensor]:
    """stage name → the images the adaptation module last extracted features of."""
    seen: dict[str, torch.Tensor] = {}
    real_extract = adaptation.ev.extract_features

    def spy(module, images, *, stage="features", **kwargs):
        seen[stage] = images
        return real_extract(module, images, stage=stage, **kwargs)

    monkeypatch.setattr(adaptation.ev, "extract_features", spy)
    return seen


def test_the_classifier_never_sees_an_evaluation_image(monkeypatch, tmp_path):
    seen = _spy_on_features(monkeypatch)
    dataset, source = DebugDataset(validation=20), DebugSource()
    identity, images = adaptation.source_domain(source, dataset, device=CPU)
    assert identity["class"].endswith("DebugSource")  # it names no domain dataset: samples
    classifier = adaptation.domain_classifier(
        identity, images, dataset, DebugExtractor(), device=CPU, cache_dir=tmp_path
    )
    trained_on = set(image_sha256s(seen["features-target-domain"]))
    assert len(trained_on) > 20  # the shot pool and the validation split
    assert not trained_on & set(image_sha256s(dataset.evaluation_images()))
    assert classifier.n_source == classifier.n_target == len(trained_on)  # equal sides
    # the source side is cached: a second classifier does not generate again
    seen.clear()
    adaptation.domain_classifier(
        identity, images, dataset, DebugExtractor(), device=CPU, cache_dir=tmp_path
    )
    assert "features-source" not in seen


def test_every_record_carries_the_measure(tmp_path):
    result = gtbench(
        "run", *FAST, "--methods", "source-only,finetune", "--curve", "2", results=tmp_path
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(p.read_text()) for p in tmp_path.glob("runs/*/record.json")]
    assert records
    for record in records:
        assert "adaptation" in record["metrics"] and "adaptation_prob" in record["metrics"]
        assert record["eval"]["adaptation_source_side"].startswith("samples of the pretrained")
        assert isinstance(record["eval"]["adaptation_accuracy"], float)
        assert record["timings"]["adaptation_s"] >= 0
        for point in record.get("curve", []):  # each curve point: every measure of the end
            for name in ("kid_mean", "mem_closer_to_train", "intra_cluster_diversity"):
                assert isinstance(point[name], float)
            assert "adaptation" in point and "shot_coverage" in point
    assert sum(len(r.get("curve", [])) for r in records) == 2  # finetune's two points
    board = (tmp_path / "leaderboard.csv").read_text().splitlines()[0].split(",")
    assert "adaptation_mean" in board


def test_a_real_source_domain_is_a_fixed_draw_of_its_dataset():
    from gtbench_plugins.datasets.animals import AnimalsCat
    from gtbench_plugins.sources.animals import AnimalsSource

    identity, images = adaptation.source_domain(AnimalsSource(), AnimalsCat(), device=CPU)
    assert identity["dataset"] == "animals-others" and identity["n"] == adaptation.SOURCE_SAMPLES
    first, second = images(), images()
    assert first.shape == (adaptation.SOURCE_SAMPLES, 1, 32, 32) and first.dtype == torch.uint8
    assert torch.equal(first, second)
    assert len(set(image_sha256s(first))) > 0.95 * len(first)  # a draw, not one class repeated


def test_a_grey_target_of_a_colour_source_is_classified_in_grey(monkeypatch, tmp_path):
    """Both sides of the classifier come in the channels the samples are judged in: for
    a grey target of a colour source, grey — else it would tell the domains by colour and
    call any grey sample adapted."""
    from gtbench.launch.runner import MatchedTarget

    seen = _spy_on_features(monkeypatch)
    source = DebugSource(channels=3)
    info = source.info
    target = MatchedTarget(DebugDataset(channels=1, validation=20), info.resolution, 3)
    assert target.images().shape[1] == 3 and target.evaluation_images().shape[1] == 1
    identity, images = adaptation.source_domain(source, target, device=CPU)
    adaptation.domain_classifier(
        identity, images, target, DebugExtractor(), device=CPU, cache_dir=tmp_path
    )
    assert seen["features-source"].shape[1] == 1
    assert seen["features-target-domain"].shape[1] == 1
