"""Tests of `gtbench.cli`: one test module per module or concern of the package."""
