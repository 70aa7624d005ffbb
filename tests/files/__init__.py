"""Tests of `gtbench.files`: one test module per module or concern of the package."""
