"""Kept generators: weights saved per cell, rebuilt by `load_generator`, and
`gtbench generate` (deterministic PNGs, --best, one-line errors)."""

import hashlib
import json

import pytest
import torch
from PIL import Image

from gtbench.launch.runner import SAMPLES
from gtbench.measure.evaluation import generate_images
from gtbench.plugin.images import save_grid
from gtbench.results.generate import load_generator
from tests.helpers import FAST, gtbench


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("results")
    assert gtbench("run", *FAST, "--methods", "finetune,scratch", results=folder).exit_code == 0
    return folder


def _run_id(results, method):
    for path in results.glob("runs/*/record.json"):
        record = json.loads(path.read_text())
        if record["method"]["name"] == method:
            return record["run_id"]
    raise AssertionError(method)


def test_record_says_weights_were_kept(results):
    run_id = _run_id(results, "finetune")
    record = json.loads((results / "runs" / run_id / "record.json").read_text())
    weights = results / "runs" / run_id / record["weights"]["file"]
    assert record["weights"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()


def test_reloaded_generator_reproduces_the_samples_drawn_after_training(results, tmp_path):
    run_id = _run_id(results, "finetune")
    record = json.loads((results / "runs" / run_id / "record.json").read_text())
    generator = load_generator(run_id[:8], results)
    assert isinstance(generator, torch.nn.Module) and not generator.training
    images = generate_images(generator, 64, seed=record["seed"] + 10_000, device="cpu")
    save_grid(images, tmp_path / "again.png")
    assert (tmp_path / "again.png").read_bytes() == (
        results / "runs" / run_id / SAMPLES
    ).read_bytes()


def test_generate_writes_n_pngs_deterministically(results, tmp_path):
    run_id = _run_id(results, "finetune")
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        result = gtbench(
            "generate", run_id, "--n", "5", "--seed", "3", "--out", str(out), results=results
        )
        assert result.exit_code == 0, result.output
    files = sorted(first.glob("*.png"))
    assert len(files) == 5
    for path in files:
        with Image.open(path) as image:
            assert image.size == (16, 16)
        assert path.read_bytes() == (second / path.name).read_bytes()
    other = gtbench(
        "generate",
        run_id,
        "--n",
        "5",
        "--seed",
        "4",
        "--out",
        str(tmp_path / "c"),
        "--grid",
        results=results,
    )
    assert other.exit_code == 0
    assert (tmp_path / "c" / f"{run_id}-seed4-00000.png").read_bytes() != files[0].read_bytes()
    assert list((tmp_path / "c").glob("*grid.png"))


def _fids(results):
    """Each method's FID in the records of ``results`` (one seed each)."""
    fids = {}
    for path in results.glob("runs/*/record.json"):
        record = json.loads(path.read_text())
        fids[record["method"]["name"]] = record["metrics"]["fid"]
    return fids


def test_best_picks_the_lowest_mean_fid(results, tmp_path):
    result = gtbench(
        "generate", "--best", "--dataset", "debug", "--n", "2", "--out", str(tmp_path),
        results=results,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    fids = _fids(results)
    lowest = min(fids, key=fids.get)
    assert f"best on debug: {lowest} " in result.output, (fids, result.output)
    assert len(list(tmp_path.glob("*.png"))) == 2


def test_best_follows_the_lowest_ranked_measure(results, tmp_path):
    """Swap which method has the lower FID and KID in a copy: the choice must follow it
    (by FID where FID is valid, by KID where the set sizes make FID invalid)."""
    fids, kids = {}, {}
    for path in results.glob("runs/*/record.json"):
        record = json.loads(path.read_text())
        fids[record["method"]["name"]] = record["metrics"]["fid"]
        kids[record["method"]["name"]] = record["metrics"]["kid_mean"]
    highest = max(fids, key=fids.get)

    def lower(record, folder):
        record["metrics"]["fid"] = min(fids.values()) / 2
        record["metrics"]["kid_mean"] = min(kids.values()) - 1.0

    _copy_run(results, tmp_path, highest, lower)
    for method in fids:
        if method != highest:
            _copy_run(results, tmp_path, method, lambda record, folder: None)
    out = tmp_path / "out"
    result = gtbench(
        "generate",
        "--best",
        "--dataset",
        "debug",
        "--n",
        "1",
        "--out",
        str(out),
        results=tmp_path / "results",
    )
    assert result.exit_code == 0, result.output
    assert f"best on debug: {highest} " in result.output, result.output


def _copy_run(results, tmp_path, method, change):
    import shutil

    target = tmp_path / "results"
    run_id = _run_id(results, method)
    shutil.copytree(results / "runs" / run_id, target / "runs" / run_id)
    path = target / "runs" / run_id / "record.json"
    record = json.loads(path.read_text())
    change(record, target / "runs" / run_id)
    path.write_text(json.dumps(record))
    return target, run_id


def _no_weights(record, folder):
    record["weights"] = None


def _failed(record, folder):
    record["status"] = "failed"


def _tampered(record, folder):
    (folder / "generator.safetensors").write_bytes(b"x" * 10)


def _plugin_gone(record, folder):
    record["source"]["name"] = "uninstalled-source"


@pytest.mark.parametrize(
    "change, message",
    [
        (_no_weights, "kept no weights"),
        (_failed, "has status failed"),
        (_tampered, "does not match its record"),
        (_plugin_gone, "unknown source 'uninstalled-source'"),
    ],
)
def test_bad_runs_get_one_line(results, tmp_path, change, message):
    target, run_id = _copy_run(results, tmp_path, "finetune", change)
    result = gtbench("generate", run_id, results=target)
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output


def test_unknown_and_ambiguous_ids(results):
    assert "no run 'zzz'" in gtbench("generate", "zzz", results=results).output
    ids = [_run_id(results, m) for m in ("finetune", "scratch")]
    common = 0
    while ids[0][common] == ids[1][common]:
        common += 1
    if common:
        result = gtbench("generate", ids[0][:common], results=results)
        assert "ambiguous" in result.output
    result = gtbench("generate", "", results=results)
    assert result.exit_code != 0


def test_no_keep_weights(tmp_path):
    result = gtbench("run", *FAST, "--methods", "finetune", "--no-keep-weights", results=tmp_path)
    assert result.exit_code == 0
    record = json.loads(next(tmp_path.glob("runs/*/record.json")).read_text())
    assert record["weights"] is None
    assert not list(tmp_path.glob("runs/*/generator.safetensors"))
    assert "kept no weights" in gtbench("generate", record["run_id"], results=tmp_path).output


def _png_tensor(path) -> torch.Tensor:
    import numpy as np

    with Image.open(path) as image:
        return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)


def test_generate_truncation_pulls_toward_the_sources_latent_avg(tmp_path, monkeypatch):
    """A kept StyleGAN2 generator keeps ``latent_avg``: ``gtbench generate --truncation 0.7``
    of a source-only run equals the source's own truncated output pixel for pixel, and
    differs from truncating toward zero (what the lost, non-persistent buffer did). A
    fine-tuned run keeps the same centre."""
    from gtbench.plugin import registry
    from gtbench_plugins.sources.stylegan2.networks import (
        StyleGAN2Discriminator,
        StyleGAN2Generator,
    )

    init = StyleGAN2Generator.__init__

    def stored_noise(self, *args, **kwargs):  # the same noise maps on both sides
        init(self, *args, **kwargs)
        self.randomize_noise = False

    monkeypatch.setattr(StyleGAN2Generator, "__init__", stored_noise)
    torch.manual_seed(0)
    generator = StyleGAN2Generator(16, style_dim=32, n_mlp=2, channel_max=16)
    discriminator = StyleGAN2Discriminator(16, channel_max=16)
    centre = torch.randn(32) * 0.5 + 1.0  # far from zero, so toward-zero truncation differs
    state = {k: v for k, v in generator.state_dict().items() if k != "latent_avg"}
    ckpt = tmp_path / "tiny.pt"
    torch.save({"g_ema": state, "g": state, "d": discriminator.state_dict(),
                "latent_avg": centre}, ckpt)  # fmt: skip
    results = tmp_path / "results"
    methods = ["--methods", "source-only,finetune", "--iters", "2"]
    result = gtbench("run", *FAST, "--sources", f"stylegan2:ckpt={ckpt}", *methods, results=results)
    assert result.exit_code == 0, result.output
    run_id = _run_id(results, "source-only")
    record = json.loads((results / "runs" / run_id / "record.json").read_text())
    assert record["source_notes"] == {"latent_avg": "checkpoint"}
    out = tmp_path / "out"
    result = gtbench("generate", run_id, "--truncation", "0.7", "--n", "6", "--seed", "3",
                     "--out", str(out), results=results)  # fmt: skip
    assert result.exit_code == 0, result.output
    written = torch.stack([_png_tensor(p) for p in sorted(out.glob("*.png"))])

    own = registry.sources().create(f"stylegan2:ckpt={ckpt},truncation=0.7").load().generator
    expected = generate_images(own, 6, seed=3, device="cpu")
    assert torch.equal(written, expected)
    own.latent_avg.zero_()
    toward_zero = generate_images(own, 6, seed=3, device="cpu")
    assert (toward_zero.int() - written.int()).abs().float().mean() > 1.0
    adapted = load_generator(_run_id(results, "finetune"), results)
    assert torch.equal(adapted.latent_avg, centre)


def test_best_ranks_by_kid_where_fid_is_not_valid(tmp_path):
    """60 evaluation images in the debug extractor's 128-d space: FID is flagged not valid,
    so --best picks the row with the lowest mean KID and says so."""
    from gtbench.results.generate import best_run
    from gtbench.results.leaderboard import leaderboard, run_rows

    small = ["--datasets", "debug:size=100", "--methods", "finetune,scratch,source-only"]
    assert gtbench("run", *FAST, *small, results=tmp_path).exit_code == 0
    records = [json.loads(p.read_text()) for p in tmp_path.glob("runs/*/record.json")]
    assert {r["metrics"]["fid_valid"] for r in records} == {False}
    assert all("rank-deficient" in r["eval"]["fid_valid_reason"] for r in records)
    board = leaderboard(run_rows(tmp_path))
    best_by_kid = board.sort_values("kid_mean").iloc[0]
    run_id, sentence = best_run(tmp_path, "debug:size=100")
    assert "ranked by KID" in sentence and f"KID {best_by_kid['kid_mean']:.3g}" in sentence
    chosen = json.loads((tmp_path / "runs" / run_id / "record.json").read_text())
    assert chosen["method"]["name"] == best_by_kid["method"]


@pytest.fixture(scope="module")
def stylegan2_run(tmp_path_factory):
    """A fine-tuned tiny StyleGAN2 whose per-layer noise matters (noise strengths 0.5, as
    a trained network has; a fresh init's are 0) and random noise per call, as published."""
    from gtbench_plugins.sources.stylegan2.networks import (
        StyleGAN2Discriminator,
        StyleGAN2Generator,
    )

    folder = tmp_path_factory.mktemp("stylegan2")
    torch.manual_seed(0)
    generator = StyleGAN2Generator(16, style_dim=32, n_mlp=2, channel_max=16)
    with torch.no_grad():
        strengths = [p for n, p in generator.named_parameters() if n.endswith("noise.weight")]
        for strength in strengths:
            strength.fill_(0.5)
    assert strengths
    state = generator.state_dict()
    discriminator = StyleGAN2Discriminator(16, channel_max=16).state_dict()
    ckpt = folder / "tiny.pt"
    torch.save({"g_ema": state, "g": state, "d": discriminator}, ckpt)
    results = folder / "results"
    result = gtbench(
        "run", *FAST, "--sources", f"stylegan2:ckpt={ckpt}", "--methods", "finetune",
        "--iters", "2", results=results,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return results, _run_id(results, "finetune")


def _generate_in_a_new_process(results, run_id, out, *extra):
    import subprocess
    import sys

    command = [sys.executable, "-c", "from gtbench.cli.main import main; main()", "generate",
               run_id, "--n", "6", "--seed", "5", "--out", str(out), "--results", str(results),
               *extra]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return sorted(out.glob("*.png"))


def test_generate_seed_fixes_stylegan2_pngs_across_processes(stylegan2_run, tmp_path):
    """Two processes, the same command: byte-identical PNGs (the noise maps come from
    --seed, not from torch's unseeded global RNG); another seed gives other images."""
    results, run_id = stylegan2_run
    first = _generate_in_a_new_process(results, run_id, tmp_path / "a")
    second = _generate_in_a_new_process(results, run_id, tmp_path / "b", "--truncation", "0.5")
    third = _generate_in_a_new_process(results, run_id, tmp_path / "c", "--truncation", "0.5")
    assert len(first) == 6
    assert [p.read_bytes() for p in second] == [p.read_bytes() for p in third]
    torch.manual_seed(1234)  # whatever the global RNG holds in this process
    again = gtbench("generate", run_id, "--n", "6", "--seed", "5", "--out", str(tmp_path / "d"),
                    results=results)  # fmt: skip
    assert again.exit_code == 0, again.output
    assert [p.read_bytes() for p in first] == [
        (tmp_path / "d" / p.name).read_bytes() for p in first
    ]
    assert [p.read_bytes() for p in first] != [p.read_bytes() for p in second]  # truncation
    other = gtbench("generate", run_id, "--n", "6", "--seed", "6", "--out", str(tmp_path / "e"),
                    results=results)  # fmt: skip
    assert other.exit_code == 0
    assert first[0].read_bytes() != next((tmp_path / "e").glob("*00000.png")).read_bytes()


def test_stylegan2_samples_depend_on_the_seed_alone(stylegan2_run):
    """Whatever the batch size and the global RNG: the same images; the noise maps do
    matter (fixed latents with other noise give other images); the caller's global RNG
    stream is left where it was."""
    results, run_id = stylegan2_run
    generator = load_generator(run_id, results)
    assert generator.randomize_noise
    torch.manual_seed(0)
    state = torch.get_rng_state()
    whole = generate_images(generator, 10, seed=2, device="cpu", batch_size=10)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(99)
    assert torch.equal(whole, generate_images(generator, 10, seed=2, device="cpu", batch_size=10))
    # other batches: the same noise maps per sample; the modulated convolutions' float
    # sums may round one grey level differently, nothing more
    seeds = list(range(100, 110))
    together = generator.sample_noise(seeds)["noise"]
    apart = [generator.sample_noise(seeds[i : i + 3])["noise"] for i in range(0, 10, 3)]
    for layer, maps in enumerate(together):
        assert torch.equal(maps, torch.cat([part[layer] for part in apart]))
    batched = generate_images(generator, 10, seed=2, device="cpu", batch_size=3)
    assert (whole.int() - batched.int()).abs().max() <= 1
    latents = generator.sample_latent(10, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        unseeded = to_uint8_images(generator(latents))
    assert not torch.equal(whole, unseeded)


def to_uint8_images(images: torch.Tensor) -> torch.Tensor:
    from gtbench.plugin.images import to_uint8

    return to_uint8(images)


def test_stylegan2_record_reproduces_from_its_kept_generator(stylegan2_run, tmp_path):
    """samples.png drawn after training is what the kept generator draws again: the
    evaluation's noise no longer depends on the RNG state training left behind."""
    results, run_id = stylegan2_run
    record = json.loads((results / "runs" / run_id / "record.json").read_text())
    generator = load_generator(run_id, results)
    images = generate_images(generator, 64, seed=record["seed"] + 10_000, device="cpu")
    save_grid(images, tmp_path / "again.png")
    assert (tmp_path / "again.png").read_bytes() == (
        results / "runs" / run_id / SAMPLES
    ).read_bytes()
