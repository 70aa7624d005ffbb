import pytest

from gtbench.errors import PluginError, UsageError
from gtbench.plan.suite import load_suite


def test_builtin_suites_load():
    suite = load_suite("debug")
    assert suite.sources == ["debug"] and suite.train["iters"] > 0
    load_suite("default")


def test_toml_and_yaml(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text(
        'methods = ["finetune"]\nseeds = [0, 1]\nextractor = "debug"\n[train]\niters = 3\n'
    )
    yaml = tmp_path / "s.yaml"
    yaml.write_text("methods: [finetune]\nseeds: [0, 1]\nextractor: debug\ntrain: {iters: 3}\n")
    for path in (toml, yaml):
        suite = load_suite(path)
        assert suite.methods == ["finetune"] and suite.seeds == [0, 1]
        assert suite.train_config().iters == 3


@pytest.mark.parametrize(
    "text, key",
    [
        ("metods = ['x']\n", "metods"),
        ("[train]\nitres = 3\n", "itres"),
        ("[eval]\nn_sample = 3\n", "n_sample"),
    ],
)
def test_unknown_keys_are_errors(tmp_path, text, key):
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=key):
        load_suite(path)


def test_missing_and_unparsable(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        load_suite(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("methods = [")
    with pytest.raises(UsageError, match="cannot parse"):
        load_suite(bad)


def test_sweeps_override_their_own_fields(tmp_path):
    from gtbench.plan.cells import plan_suite

    path = tmp_path / "s.toml"
    path.write_text(
        'sources = ["debug"]\nmethods = ["finetune"]\ndatasets = ["debug"]\nextractor = "debug"\n'
        "[train]\niters = 3\n"
        "[[sweeps]]\nshots = [5]\n"
        '[[sweeps]]\nsources = ["debug:width=8"]\n[sweeps.train]\niters = 1\n'
    )
    suite = load_suite(path)
    first, second = suite.parts()
    assert first.shots == [5] and first.train["iters"] == 3
    assert second.sources == ["debug:width=8"] and second.train["iters"] == 1
    cells = plan_suite(suite).cells
    assert [c["train"]["iters"] for c in cells] == [3, 1]


def test_sweeps_reject_unknown_keys(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[[sweeps]]\nsorces = ["debug"]\n')
    with pytest.raises(UsageError, match="sorces"):
        load_suite(path)


def test_command_line_overrides_every_part(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(
        'extractor = "debug"\n[[sweeps]]\nsources = ["debug"]\n[sweeps.train]\niters = 5\n'
        '[[sweeps]]\nsources = ["debug:width=8"]\n'
    )
    suite = load_suite(path)
    suite.override("train", iters=2)
    suite.override(sources=["debug:width=4"])
    assert [p.train["iters"] for p in suite.parts()] == [2, 2]
    assert [p.sources for p in suite.parts()] == [["debug:width=4"], ["debug:width=4"]]


@pytest.mark.parametrize(
    "text",
    [
        'methods = ["finetune"]\n',
        "[eval]\nn_samples = 10\n",
        '[[sweeps]]\nextractor = "debug"\n[[sweeps]]\nshots = [5]\n',
    ],
)
def test_a_suite_file_must_name_its_extractor(tmp_path, text):
    path = tmp_path / "no-extractor.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=r"no-extractor\.toml: no extractor named") as error:
        load_suite(path)
    assert "\n" not in str(error.value)
    path.write_text(text.replace("n_samples", 'extractor = "debug"\nn_samples'))
    if "n_samples" in text:
        assert load_suite(path).extractor == "debug"  # named under [eval] is enough


def test_builtin_suites_name_their_extractor():
    from importlib import resources

    for file in (resources.files("gtbench") / "suites").iterdir():
        if file.name.endswith(".toml"):
            suite = load_suite(file.name.removesuffix(".toml"))
            assert suite.extractor, file.name


def test_quick_suite_loads_and_plans_a_small_smoke_run():
    from gtbench.plan.cells import plan_suite

    suite = load_suite("quick")
    cells = plan_suite(suite).cells
    assert len(cells) == len(suite.methods) * len(suite.seeds) <= 8
    assert {c["source"]["name"] for c in cells} == {"animals-dcgan32"}
    assert {c["dataset"]["name"] for c in cells} == {"animals-cat"}
    trained = [c for c in cells if c["train"]]
    assert trained and all(c["train"]["iters"] <= 200 for c in trained)
    # a first look that still measures: FID valid (more images than feature dimensions)
    assert all(c["eval"]["n_samples"] > 256 for c in cells)
    assert suite.extractor == "shapes-cnn"


def _suite_file(tmp_path, text):
    path = tmp_path / "s.toml"
    path.write_text('sources = ["debug"]\ndatasets = ["debug"]\nextractor = "debug"\n' + text)
    return path


def test_values_are_typed_and_normalised_before_run_id(tmp_path):
    from gtbench.plan.cells import plan_suite

    def suite(sources: str, train: str):
        path = tmp_path / "s.toml"
        path.write_text(
            f'sources = {sources}\nmethods = ["finetune"]\ndatasets = ["debug"]\n'
            f'extractor = "debug"\n[train]\n{train}'
        )
        return load_suite(path)

    loose = suite(
        '["debug:width=8", "debug:width=8.0", {name = "debug", width = 8.0}]',
        'iters = "3"\nlr_g = 1\nflip = false\n',
    )
    assert loose.train == {"iters": 3, "lr_g": 1.0, "flip": False}
    assert type(loose.train["iters"]) is int and type(loose.train["lr_g"]) is float
    cells = plan_suite(loose).cells
    assert {c["source"]["params"]["width"] for c in cells} == {8}
    assert len({c["run_id"] for c in cells}) == 1  # one configuration, one identity
    strict = suite('["debug:width=8"]', "iters = 3\nlr_g = 1.0\nflip = false\n")
    assert plan_suite(strict).cells[0]["run_id"] == cells[0]["run_id"]


def test_a_plugin_that_refuses_a_value_is_named(tmp_path):
    from gtbench.plan.cells import plan_suite

    path = _suite_file(tmp_path, 'methods = ["freeze-d:layers=2.0"]\n')
    with pytest.raises(PluginError, match=r"^method 'freeze-d': layers must be an integer"):
        plan_suite(load_suite(path))


@pytest.mark.parametrize(
    "text, message",
    [
        ('[train]\niters = "300x"\n', "[train]: iters = '300x': expected an integer"),
        ("[train]\niters = 2.5\n", "[train]: iters = 2.5: expected an integer"),
        ('[train]\nflip = "yes"\n', "[train]: flip = 'yes': expected true or false"),
        ("[train]\nflip = 1\n", "[train]: flip = 1: expected true or false"),
        ('[train]\nlr_g = "fast"\n', "[train]: lr_g = 'fast': expected a number"),
        ("[eval]\nn_samples = true\n", "[eval]: n_samples = True: expected an integer"),
    ],
)
def test_wrong_types_are_one_line_naming_the_key(tmp_path, text, message):
    with pytest.raises(UsageError) as caught:
        load_suite(_suite_file(tmp_path, 'methods = ["finetune"]\n' + text))
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_shots_suite_is_the_full_suites_cat_protocol_at_several_shot_counts():
    """The data-efficiency sweep: the cats of `full` (same source, budget, evaluation and
    extractor) at 5, 10 and 50 shots, all drawn from the cats' shot pool."""
    from gtbench.plugin import registry

    shots = load_suite("shots")
    cats = [
        p
        for p in load_suite("full").parts()
        if "animals-cat" in p.datasets and p.budget == "adapted"
    ]
    assert cats and shots.datasets == ["animals-cat"] and shots.sources == cats[0].sources
    assert any(
        shots.train == p.train and shots.eval == p.eval and shots.budget == p.budget for p in cats
    )
    assert shots.extractor == cats[0].extractor
    assert len(shots.shots) >= 3 and 10 in shots.shots and len(shots.seeds) >= 5
    pool = registry.datasets().create("animals-cat").info
    assert max(shots.shots) <= pool.shot_pool
    assert "finetune" in shots.methods
