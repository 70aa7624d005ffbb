"""An example third-party gtbench plugin distribution (see docs/plugins.md)."""
