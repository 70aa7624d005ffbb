"""Built-in launchers."""
