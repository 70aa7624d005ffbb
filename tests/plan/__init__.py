"""Tests of `gtbench.plan`: one test module per module or concern of the package."""
