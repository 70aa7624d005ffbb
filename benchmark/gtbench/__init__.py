"""gtbench: a benchmark harness for transfer learning in image generation.

The plugin API lives in :mod:`gtbench.api`; the command line in :mod:`gtbench.cli.main`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gtbench")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"
