"""An example third-party gtbench plugin distribution (see the README's "Write a plugin")."""
