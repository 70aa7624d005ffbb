import pytest

from gtbench.errors import UsageError
from gtbench.suite import load_suite


def test_builtin_suites_load():
    suite = load_suite("debug")
    assert suite.sources == ["debug"] and suite.train["iters"] > 0
    load_suite("default")


def test_toml_and_yaml(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text('methods = ["finetune"]\nseeds = [0, 1]\n[train]\niters = 3\n')
    yaml = tmp_path / "s.yaml"
    yaml.write_text("methods: [finetune]\nseeds: [0, 1]\ntrain: {iters: 3}\n")
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
    from gtbench.cells import plan_suite

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
        '[[sweeps]]\nsources = ["debug"]\n[sweeps.train]\niters = 5\n'
        '[[sweeps]]\nsources = ["debug:width=8"]\n'
    )
    suite = load_suite(path)
    suite.override("train", iters=2)
    suite.override(sources=["debug:width=4"])
    assert [p.train["iters"] for p in suite.parts()] == [2, 2]
    assert [p.sources for p in suite.parts()] == [["debug:width=4"], ["debug:width=4"]]
