"""Search distributions: ranges, seeded per (seed, method, trial, name), text round trip."""

from __future__ import annotations

import math
import random

import pytest

from gtbench.plugin import registry
from gtbench.plugin.search import (
    Choice,
    IntUniform,
    LogUniform,
    Uniform,
    parse_distribution,
    sample_space,
    trial_rng,
)


def test_draws_stay_in_range_and_cover_it() -> None:
    rng = random.Random(0)
    log = [LogUniform(1e-4, 1e-2).sample(rng) for _ in range(2000)]
    assert all(1e-4 <= v <= 1e-2 for v in log)
    # uniform in log space: about half the draws below the geometric mean 1e-3
    below = sum(v < 1e-3 for v in log) / len(log)
    assert 0.45 < below < 0.55
    flat = [Uniform(-1.0, 3.0).sample(rng) for _ in range(2000)]
    assert all(-1.0 <= v <= 3.0 for v in flat)
    assert abs(sum(flat) / len(flat) - 1.0) < 0.1
    ints = {IntUniform(-4, -2).sample(rng) for _ in range(200)}
    assert ints == {-4, -3, -2}
    assert {Choice("a", 2, True).sample(rng) for _ in range(200)} == {"a", 2, True}


def test_bad_distributions_are_refused() -> None:
    for build in (
        lambda: LogUniform(0.0, 1.0),
        lambda: Uniform(2.0, 1.0),
        lambda: IntUniform(3, 1),
        lambda: IntUniform(0.5, 2),
        lambda: Choice(),
        lambda: Uniform(0.0, math.inf),
    ):
        with pytest.raises(ValueError):
            build()


@pytest.mark.parametrize(
    "text",
    [
        "log-uniform(0.0001, 0.01)",
        "uniform(0.4, 0.8)",
        "int-uniform(-4, -2)",
        'choice("color,translation,cutout", "translation")',
        'choice(1, 2.5, true, "mean")',
    ],
)
def test_text_form_round_trips(text: str) -> None:
    dist = parse_distribution(text)
    assert parse_distribution(str(dist)) == dist
    assert str(parse_distribution(str(dist))) == str(dist)


def test_choice_keeps_commas_inside_quotes() -> None:
    dist = parse_distribution('choice("color,translation,cutout", translation)')
    assert dist.values == ("color,translation,cutout", "translation")


@pytest.mark.parametrize(
    "text", ["normal(0, 1)", "uniform(1)", "log-uniform(-1, 1)", 'choice("a)', "uniform"]
)
def test_bad_text_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_distribution(text)


def test_sampling_is_seeded_per_method_trial_and_name() -> None:
    space = {"lr": LogUniform(1e-4, 1e-2), "layers": IntUniform(0, 100)}
    a = sample_space(space, seed=0, method="freeze-d", trial=1)
    assert a == sample_space(space, seed=0, method="freeze-d", trial=1)
    assert a != sample_space(space, seed=0, method="freeze-d", trial=2)
    assert a != sample_space(space, seed=1, method="freeze-d", trial=1)
    assert a["lr"] != sample_space(space, seed=0, method="finetune", trial=1)["lr"]
    # adding a parameter to the space does not reshuffle the others
    wider = sample_space({**space, "extra": Uniform(0, 1)}, seed=0, method="freeze-d", trial=1)
    assert wider["lr"] == a["lr"] and wider["layers"] == a["layers"]
    assert trial_rng(0, "m", 1, "x").random() == trial_rng(0, "m", 1, "x").random()


def test_builtin_method_spaces_contain_their_defaults() -> None:
    """Every declared space is around the published default it tunes."""
    declared = 0
    for name in registry.methods().names():
        if registry.methods().load_error(name) is not None:
            continue
        for key, parameter in registry.methods().get(name).parameters.items():
            dist = parameter.search
            if dist is None:
                continue
            declared += 1
            default = parameter.default
            if isinstance(dist, Choice):
                assert default in dist.values, (name, key)
            else:
                assert dist.low <= default <= dist.high, (name, key)
    assert declared >= 8


def test_docs_give_every_declared_space_a_row() -> None:
    """docs/methods.md "Search spaces" has a row per method with each declared space."""
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "methods.md").read_text()
    section = docs.split("## Search spaces", 1)[1]
    rows = {
        name.strip(): line
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| method")
        for name in line.split("|")[1].split(",")
    }
    for name in registry.methods().names():
        if registry.methods().load_error(name) is not None:
            continue
        for key, parameter in registry.methods().get(name).parameters.items():
            if parameter.search is not None:
                assert name in rows, f"docs/methods.md: no search-space row for {name}"
                assert f"`{key} ~ {parameter.search}`" in rows[name], (name, key)
