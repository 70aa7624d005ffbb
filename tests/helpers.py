"""Small shared pieces of the test suite."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from gtbench.cli.main import main

FAST = ["--suite", "debug", "--iters", "4", "--n-samples", "40", "--batch-size", "4"]


def gtbench(*args: str, results: Path | None = None) -> Result:
    """Run the CLI in-process; returns click's result (exit_code, output, stderr)."""
    argv = list(args)
    if results is not None:
        argv += ["--results", str(results)]
    return CliRunner().invoke(main, argv, catch_exceptions=False)


def docs_script(name: str):  # noqa: ANN201 - the module
    """Import ``docs/<name>.py`` (the scripts that print the docs' tables) as a module."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "docs" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
