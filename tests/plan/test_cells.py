import pytest

from gtbench.errors import PluginError, UsageError
from gtbench.plan.cells import plan_suite
from gtbench.plan.suite import load_suite


def _suite(**changes):
    suite = load_suite("debug")
    for key, value in changes.items():
        setattr(suite, key, value)
    return suite


def test_cross_product_and_stable_ids():
    plan = plan_suite(_suite(seeds=[0, 1], shots=[5, 10]))
    assert len(plan.cells) == 3 * 2 * 2
    ids = [cell["run_id"] for cell in plan.cells]
    assert len(set(ids)) == len(ids)
    assert ids == [cell["run_id"] for cell in plan_suite(_suite(seeds=[0, 1], shots=[5, 10])).cells]


def test_run_id_covers_parameters_and_budget():
    base = plan_suite(_suite(methods=["finetune"])).cells[0]["run_id"]
    other_budget = _suite(methods=["finetune"])
    other_budget.train["iters"] = 7
    assert plan_suite(other_budget).cells[0]["run_id"] != base
    other_source = plan_suite(_suite(methods=["finetune"], sources=["debug:width=8"]))
    assert other_source.cells[0]["run_id"] != base
    explicit_default = plan_suite(_suite(methods=["finetune"], sources=["debug:width=16"]))
    assert explicit_default.cells[0]["run_id"] == base


def test_incompatible_cells_are_skipped_with_reason():
    from gtbench.api import Method
    from gtbench.plugin import registry

    class NeedsD(Method):
        requires_discriminator = True

    registry.methods().register("needs-d", NeedsD)
    try:
        plan = plan_suite(_suite(methods=["needs-d"], sources=["debug:discriminator=false"]))
    finally:
        registry.reset()
    assert not plan.cells
    assert "pretrained discriminator" in plan.skipped[0].reason


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"shots": [0]}, "at least 1"),
        ({"shots": [-3]}, "at least 1"),
        ({"shots": [1000]}, "larger than dataset"),
        ({"seeds": [-1]}, "at least 0"),
        ({"methods": ["finetun"]}, "did you mean"),
    ],
)
def test_bad_input(changes, message):
    with pytest.raises((UsageError, PluginError), match=message):
        plan_suite(_suite(**changes))
