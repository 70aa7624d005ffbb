"""Tests of `gtbench.tune`: one test module per module or concern of the package."""
