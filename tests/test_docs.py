"""The README (front page) and the docs/ pages hold together: every relative link and
anchor resolves, the README's test command is the one CI runs, its example prints what it
shows, and every plugin a documented command line names exists with the parameters it is
given. (The pages' claims about the committed results: tests/test_docs_results.py.)"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest

from tests.helpers import gtbench

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.*)$", text, flags=re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_and_anchor_resolves(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: link to {target} (no such file)"
        if anchor:
            assert anchor in _anchors(linked), f"{page.name}: link to {target} (no such heading)"


def test_the_readme_links_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    linked = {Path(t.partition("#")[0]).name for t in LINK.findall(readme)}
    missing = {p.name for p in PAGES[1:]} - linked
    assert not missing, f"docs pages the README's 'Where to read on' does not link: {missing}"


def _code_blocks(text: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)


def test_the_readme_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci.startswith("python3 -m venv .venv && ")
    assert ci in _code_blocks((ROOT / "README.md").read_text())[1].splitlines()
    main = _code_blocks((ROOT / "README.md").read_text())[0].strip()
    assert main == (
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/gtbench run --methods all"
    )


def test_the_readme_example_prints_what_it_shows():
    text = (ROOT / "README.md").read_text()
    example = text[text.index("## One example") :]
    command, shown = _code_blocks(example)[:2]
    args = shlex.split(command.strip())
    assert args[0] == ".venv/bin/gtbench"
    result = gtbench(*args[1:])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == shown.strip(), "README's example output is not current"


PLUGIN_OPTIONS = {"--sources": "source", "--methods": "method", "--datasets": "dataset",
                  "--extractor": "extractor", "--launcher": "launcher",
                  "--source": "source", "--dataset": "dataset"}  # fmt: skip


def _documented_specs() -> list[tuple[str, str, str]]:
    """(page, kind, spec) for every plugin named by a ``gtbench run/tune/pretrain``
    line in a code block of the README or a docs page."""
    found = []
    for page in PAGES:
        for block in _code_blocks(page.read_text()):
            for line in block.splitlines():
                line = line.split("#", 1)[0].replace("[", " ").replace("]", " ")
                if not re.search(r"gtbench (run|tune|pretrain)\b", line):
                    continue
                words = shlex.split(line)
                for option, value in zip(words, words[1:], strict=False):
                    kind = PLUGIN_OPTIONS.get(option)
                    if kind and value != "all" and "LIST" not in value:
                        found.append((page.name, kind, value))
    return found


def test_documented_command_lines_name_real_plugins_and_parameters():
    from gtbench.plugin import registry
    from gtbench.plugin.spec import parse_spec, parse_spec_list

    specs = _documented_specs()
    assert len(specs) >= 10
    for page, kind, value in specs:
        for text in parse_spec_list(value):
            spec = parse_spec(text)
            cls = registry.registry(kind).get(spec.name)
            unknown = set(spec.params) - set(cls.parameters)
            assert not unknown, f"{page}: {kind} {spec.name} has no parameter {unknown}"


def test_the_plugin_guide_code_runs(tmp_path, monkeypatch):
    """docs/plugins.md's blocks, as the package they describe: the pyproject's entry
    points name the blocks' classes, the dataset and the G-only source pass the contract
    checks, the method trains, and the guide's own test passes."""
    import tomllib
    import torch

    from gtbench.api import check_dataset, check_source
    from gtbench.plugin import registry

    text = (ROOT / "docs" / "plugins.md").read_text()
    python = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    (pyproject,) = re.findall(r"```toml\n(.*?)```", text, flags=re.S)
    package = tmp_path / "my_gtbench"
    package.mkdir()
    (package / "__init__.py").write_text("")
    names = ["method", "dataset", "source", "test_guide"]
    assert len(python) == len(names)
    for name, code in zip(names, python, strict=True):
        (package / f"{name}.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    modules = {name: importlib.import_module(f"my_gtbench.{name}") for name in names}
    try:
        torch.save(modules["source"].TinyG().state_dict(), package / "tiny_g.pt")
        groups = tomllib.loads(pyproject)["project"]["entry-points"]
        for group, entries in groups.items():
            kind = group.removeprefix("gtbench.").removesuffix("s")
            for name, target in entries.items():
                module, _, attr = target.partition(":")
                cls = getattr(importlib.import_module(module), attr)
                registry.registry(kind).register(name, cls, distribution="my-gtbench")
        dataset = registry.datasets().create("digits32")
        check_dataset(dataset)
        assert int(dataset.images().max()) >= 128 and len(dataset.evaluation_images()) > 256
        check_source(registry.sources().create("tiny-g"))
        modules["test_guide"].test_the_pull_keeps_g_near_the_source()
    finally:
        registry.reset()
        for name in [m for m in sys.modules if m.startswith("my_gtbench")]:
            del sys.modules[name]


def test_the_plugin_guide_kid_ranges_are_the_committed_ones():
    import pandas as pd

    board = pd.read_csv(ROOT / "results" / "reference" / "leaderboard.csv")
    ranges = board.groupby("dataset")["kid_mean"].agg(["min", "max"]).round().astype(int)
    text = " ".join((ROOT / "docs" / "plugins.md").read_text().split())

    def spaced(value: int) -> str:
        return f"{value:,}".replace(",", " ")

    for dataset, words in (("animals-cat", "cats"), ("digits", "digits")):
        low, high = ranges.loc[dataset]
        assert f"{spaced(low)} to {spaced(high)} on {words}" in text


def test_architecture_names_only_real_tests_and_functions():
    """docs/architecture.md's invariants each name the test that guards them, and its
    stages name functions of the core: every one of them must exist."""
    import importlib

    text = (ROOT / "docs" / "architecture.md").read_text()
    tests = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", text)
    assert len(tests) >= 8
    for path, name in tests:
        assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), flags=re.M), (
            f"architecture.md names {path}::{name}, which does not exist"
        )
    for chained in re.findall(r"`::(\w+)`", text):  # `file::a`, `::b`: b in the same file
        assert any(
            re.search(rf"^def {chained}\(", (ROOT / p).read_text(), flags=re.M) for p, _ in tests
        ), f"architecture.md names ::{chained}, which does not exist"
    functions = re.findall(
        r"`((?:plan|launch|results|train|measure|plugin|files|cli)\.[\w.]+)`", text
    )
    assert len(functions) >= 15
    for dotted in functions:
        try:  # a module ...
            importlib.import_module(f"gtbench.{dotted}")
            continue
        except ModuleNotFoundError:  # ... or a name in one
            module, _, attr = dotted.rpartition(".")
        target = importlib.import_module(f"gtbench.{module}")
        assert hasattr(target, attr), (
            f"architecture.md names gtbench.{dotted}, which does not exist"
        )


def test_the_tests_mirror_the_packages():
    """Every core package has its tests folder, and no test module of the core sits at the
    top apart from the cross-cutting checks docs/architecture.md lists."""
    core = ROOT / "benchmark" / "gtbench"
    untested_alone = {"api"}  # the public API's names are tested where they are used
    packages = {p.parent.name for p in core.glob("*/__init__.py")} - untested_alone
    assert packages <= {p.name for p in (ROOT / "tests").iterdir() if p.is_dir()}
    for package in packages:
        assert list((ROOT / "tests" / package).glob("test_*.py")), package
    top = {p.name for p in (ROOT / "tests").glob("test_*.py")}
    text = (ROOT / "docs" / "architecture.md").read_text().split("## Where the tests are")[1]
    listed = set(re.findall(r"`(test_\w+\.py)`", text))
    assert top == listed, f"unlisted: {top - listed}; listed but absent: {listed - top}"
