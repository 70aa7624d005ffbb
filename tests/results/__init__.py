"""Tests of `gtbench.results`: one test module per module or concern of the package."""
