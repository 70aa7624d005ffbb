"""Tests of `gtbench.launch`: one test module per module or concern of the package."""
