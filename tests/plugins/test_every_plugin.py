"""Registry-wide checks, parameterised over every registered plugin: a new plugin is
tested here without anyone writing a test for it.

Each plugin must load, declare its metadata, and run one tiny cell (methods and sources
on the debug suite; datasets as targets of the debug source). A plugin that needs user
input it cannot get here (a folder path, extractor weights) declares ``example_params``
or is skipped with the reason shown."""

from __future__ import annotations

import pytest

from gtbench.api import Parameter, check_dataset, check_source
from gtbench.errors import MissingAssetError
from gtbench.launch.runner import run_cell
from gtbench.plan.cells import plan_suite
from gtbench.plan.suite import load_suite
from gtbench.plugin import registry
from gtbench.plugin.spec import PluginSpec
from gtbench.results.records import load_record


def _all(kind: str) -> list[str]:
    return registry.registry(kind).names()


def _spec(kind: str, name: str) -> str:
    cls = registry.registry(kind).get(name)
    return str(PluginSpec(name, dict(cls.example_params)))


def _tiny_cell(tmp_path, **choices):
    suite = load_suite("debug")
    suite.sources = [choices.get("source", "debug")]
    suite.methods = [choices.get("method", "finetune")]
    suite.datasets = [choices.get("dataset", "debug")]
    suite.shots = [choices.get("shots", 5)]
    suite.train.update(iters=2, batch_size=2)
    suite.eval.update(n_samples=12, kid_subset_size=6)
    plan = plan_suite(suite)
    if not plan.cells:
        pytest.skip(f"incompatible combination: {plan.skipped[0].reason}")
    outcome = run_cell(plan.cells[0], tmp_path)
    record = load_record(tmp_path, outcome.run_id)
    assert outcome.status == "ok", record.get("error")
    assert record["metrics"]["fid"] > 0  # generated vs real images: never identical
    return record


@pytest.mark.parametrize("kind", sorted(registry.KINDS))
def test_every_plugin_loads_and_declares_metadata(kind):
    reg = registry.registry(kind)
    for name in reg.names():
        assert reg.load_error(name) is None, reg.load_error(name)
        cls = reg.get(name)
        assert cls.description or cls.__doc__, f"{kind} {name} has no description"
        for key, parameter in cls.parameters.items():
            assert isinstance(parameter, Parameter), f"{kind} {name}: {key}"
        assert set(cls.example_params) <= set(cls.parameters)


def _needs_user_input(kind: str, name: str) -> list[str]:
    """Parameters without a usable default that ``example_params`` does not fill either."""
    cls = registry.registry(kind).get(name)
    return [
        key
        for key, parameter in cls.parameters.items()
        if parameter.default in ("", None) and key not in cls.example_params
    ]


@pytest.mark.parametrize("name", _all("dataset"))
def test_every_dataset_meets_its_contract(name):
    """The sweep's own pre-flight check: uint8 N×C×H×W images at the declared resolution
    and channels, as many as declared, spanning 0..255."""
    missing = _needs_user_input("dataset", name)
    if missing:
        pytest.skip(f"needs user input ({', '.join(missing)}); tested in its own module")
    check_dataset(registry.datasets().create(_spec("dataset", name)))


@pytest.mark.parametrize("name", _all("source"))
def test_every_source_meets_its_contract(name):
    """The sweep's own pre-flight check: latents of the declared shape, images of the
    declared shape on a [-1, 1] scale, a discriminator as declared (or a fresh one)."""
    check_source(registry.sources().create(_spec("source", name)))


@pytest.mark.parametrize("name", _all("method"))
def test_every_method_runs_a_tiny_cell(tmp_path, name):
    record = _tiny_cell(tmp_path, method=_spec("method", name))
    steps = record["g_steps"] + record["d_steps"]  # counted by the trainer, not the method
    if registry.methods().create(_spec("method", name)).trains():
        assert steps > 0, "a training method made no optimiser step"
    else:
        assert steps == 0


@pytest.mark.parametrize("name", _all("source"))
def test_every_source_runs_a_tiny_cell(tmp_path, name):
    info = registry.sources().create(_spec("source", name)).info
    assert info.resolution > 0 and info.channels in (1, 3)
    _tiny_cell(tmp_path, source=_spec("source", name))


@pytest.mark.parametrize("name", _all("dataset"))
def test_every_dataset_is_a_target(tmp_path, name):
    missing = _needs_user_input("dataset", name)
    if missing:
        pytest.skip(f"needs user input ({', '.join(missing)}); tested in its own module")
    record = _tiny_cell(tmp_path, dataset=_spec("dataset", name), shots=2)
    assert record["shot_eval_overlap"] == 0  # compared by content, at the matched resolution
    dataset = registry.datasets().create(_spec("dataset", name))
    for seed in range(3):  # and at the dataset's own resolution, for the suites' shot counts
        shots = min(10, dataset.info.shot_pool)
        assert dataset.shot_eval_overlap(dataset.split(shots, seed)) == 0, (name, seed)


@pytest.mark.parametrize("name", _all("extractor"))
def test_every_extractor_is_available_or_says_how(name):
    extractor = registry.extractors().create(_spec("extractor", name))
    try:
        extractor.check_available()
    except MissingAssetError as error:
        assert "\n" not in str(error) and len(str(error)) > 20
        return
    assert extractor.fidelity_name() and extractor.feature_layer()


STYLEGAN2_TINY = "stylegan2:ckpt=random,size=32,channel_max=32,style_dim=64,n_mlp=2"


@pytest.mark.parametrize("name", _all("method"))
def test_every_method_runs_on_a_tiny_stylegan2(tmp_path, name):
    _tiny_cell(tmp_path, source=STYLEGAN2_TINY, method=_spec("method", name))
