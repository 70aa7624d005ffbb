"""User-facing errors: each prints as one clear line, never a bare traceback."""

from __future__ import annotations


class GtbenchError(Exception):
    """An error the user can act on; the CLI prints its message alone."""


class UsageError(GtbenchError):
    """Bad command-line or suite input (exit status 2)."""


class PluginError(GtbenchError):
    """A plugin is unknown, broken, or rejected its parameters."""


class MissingAssetError(GtbenchError):
    """Weights or data that cannot be obtained; the message says how to provide them."""


class DivergedError(GtbenchError):
    """A training loss became NaN or infinite."""
