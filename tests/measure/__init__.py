"""Tests of `gtbench.measure`: one test module per module or concern of the package."""
