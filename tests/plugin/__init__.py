"""Tests of `gtbench.plugin`: one test module per module or concern of the package."""
