"""Tests of the built-in plugins (``gtbench_plugins``), through the public API as a third
party would use it."""
