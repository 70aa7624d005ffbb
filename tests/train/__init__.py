"""Tests of `gtbench.train`: one test module per module or concern of the package."""
