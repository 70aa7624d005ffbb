"""The ``gtbench`` command line: the top layer, for people.

Owns the commands and their one-line errors and exit codes (``main``; the sub-commands
``fetch``, ``tune`` and ``status`` in their own modules, imported when invoked). It may
import every other package of gtbench except :mod:`gtbench.api`; nothing imports it.
"""
