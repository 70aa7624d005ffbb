import pytest

from gtbench.errors import UsageError
from gtbench.plugin.spec import PluginSpec, coerce, parse_spec, parse_spec_list


def test_name_only():
    assert parse_spec("finetune") == PluginSpec("finetune", {})


def test_parameters_and_quoted_commas():
    spec = parse_spec('folder:path="a,b",res=64')
    assert spec.name == "folder" and spec.params == {"path": "a,b", "res": "64"}


def test_suite_table():
    assert parse_spec({"name": "folder", "res": 32}) == PluginSpec("folder", {"res": 32})


@pytest.mark.parametrize("bad", ["", ":res=1", "folder:res", "folder:=3"])
def test_bad_specs_are_usage_errors(bad):
    with pytest.raises(UsageError):
        parse_spec(bad)


def test_list_keeps_parameters_with_their_spec():
    text = "finetune,freeze-d:layers=2,ewc,folder:path=x,res=64"
    assert parse_spec_list(text) == ["finetune", "freeze-d:layers=2", "ewc", "folder:path=x,res=64"]


@pytest.mark.parametrize(
    "value, like, expected",
    [
        ("300", 1, 300),
        (2.0, 1, 2),
        ("2.0", 1, 2),
        (" TRUE ", False, True),
        ("false", True, False),
        (3, 1.0, 3.0),
        ("1e-3", 1.0, 0.001),
        (64, "", "64"),
        ("x", None, "x"),
    ],
)
def test_coerce_parses_and_normalises(value, like, expected):
    result = coerce(value, like)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    "value, like",
    [(2.5, 1), ("2.5", 1), ("1", False), (1, False), ("yes", True), (True, 1), (False, 1.0),
     ("fast", 1.0), ([1], "")],
)  # fmt: skip
def test_coerce_refuses_the_wrong_type(value, like):
    with pytest.raises(ValueError, match="expected"):
        coerce(value, like)
