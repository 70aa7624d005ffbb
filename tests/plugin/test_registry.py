from importlib import metadata

import pytest

from gtbench.api import Method
from gtbench.errors import PluginError
from gtbench.plugin import registry
from gtbench.plugin.spec import parse_spec


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Install fake entry points for the methods group; restore discovery afterwards."""
    points: list[metadata.EntryPoint] = []

    class FakeDist:
        def __init__(self, name):
            self.metadata = {"Name": name}
            self.version = "9.9"

    def add(name, value, dist):
        point = metadata.EntryPoint(name, value, "gtbench.methods")
        point = point._for(FakeDist(dist)) if hasattr(point, "_for") else point
        object.__setattr__(point, "dist", FakeDist(dist))
        points.append(point)

    real = registry._entry_points

    def fake(group):
        return list(real(group)) + (points if group == "gtbench.methods" else [])

    monkeypatch.setattr(registry, "_entry_points", fake)
    registry.reset()
    yield add
    registry.reset()


class GoodMethod(Method):
    description = "a test method"


def test_builtins_are_discovered_without_importing():
    reg = registry.discover("method")
    assert {"finetune", "scratch", "source-only"} <= set(reg.names())
    assert reg.entry("finetune").builtin


def test_unknown_name_suggests(fake_entry_points):
    with pytest.raises(PluginError, match="did you mean 'finetune'"):
        registry.methods().get("finetun")


def test_broken_plugin_is_isolated(fake_entry_points):
    fake_entry_points("broken", "no_such_module_xyz:Thing", "thirdparty")
    reg = registry.methods()
    error = reg.load_error("broken")
    assert "thirdparty 9.9" in error and "ModuleNotFoundError" in error
    assert reg.load_error("finetune") is None
    with pytest.raises(PluginError, match="broken.*thirdparty"):
        reg.create("broken")


def test_failure_is_not_cached(fake_entry_points, monkeypatch, tmp_path):
    fake_entry_points("later", "late_module_xyz:LateMethod", "thirdparty")
    reg = registry.methods()
    assert reg.load_error("later") is not None
    (tmp_path / "late_module_xyz.py").write_text(
        "from gtbench.api import Method\nclass LateMethod(Method):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert reg.load_error("later") is None


def test_not_a_plugin_class(fake_entry_points):
    fake_entry_points("wrong", "os.path:join", "thirdparty")
    with pytest.raises(PluginError, match="not a subclass"):
        registry.methods().get("wrong")


def test_builtin_wins_collision(fake_entry_points):
    fake_entry_points("finetune", f"{__name__}:GoodMethod", "thirdparty")
    reg = registry.methods()
    assert reg.entry("finetune").distribution == "gtbench"
    assert any("thirdparty" in line and "ignored" in line for line in reg.collisions)


def test_disable_autoload_keeps_builtins(fake_entry_points, monkeypatch):
    fake_entry_points("extra", f"{__name__}:GoodMethod", "thirdparty")
    monkeypatch.setenv(registry.DISABLE_AUTOLOAD_ENV, "1")
    registry.reset()
    names = registry.methods().names()
    assert "extra" not in names and "finetune" in names


def test_unknown_parameter_is_one_clear_error():
    with pytest.raises(PluginError, match="has no parameter 'widht'.*accepted: channels"):
        registry.sources().create("debug:widht=3")


def test_parameters_are_parsed_to_their_types():
    source = registry.sources().create("debug:width=8,discriminator=false")
    assert source.params["width"] == 8 and source.params["discriminator"] is False


@pytest.mark.parametrize(
    "spec, message",
    [
        ("debug:discriminator=1", "expected true or false, got '1'"),
        ("debug:discriminator=yes", "expected true or false, got 'yes'"),
        ("debug:width=8.5", "expected an integer, got '8.5'"),
        ("debug:width=wide", "expected an integer, got 'wide'"),
    ],
)
def test_parameter_types_are_strict(spec, message):
    with pytest.raises(PluginError, match=message):
        registry.sources().create(spec)


def test_integral_values_are_normalised():
    for spec in ("debug:width=8", "debug:width=8.0", {"name": "debug", "width": 8.0}):
        width = registry.sources().create(parse_spec(spec)).params["width"]
        assert width == 8 and type(width) is int
    source = registry.sources().create("debug:discriminator=FALSE")
    assert source.params["discriminator"] is False
