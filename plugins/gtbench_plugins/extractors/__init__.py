"""Built-in extractors."""
