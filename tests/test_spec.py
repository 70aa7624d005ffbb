import pytest

from gtbench.errors import UsageError
from gtbench.spec import PluginSpec, parse_spec, parse_spec_list


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
