"""Launching: running planned cells and keeping a results folder consistent.

Owns a sweep (``sweep``: resume, triage, contract checks, handing cells to a launcher
plugin, rebuilding the tables) and one cell's run (``runner``: build the plugins, train,
evaluate, write exactly one record, with what it cost: ``resources``, the cell's peak
memory). It may import :mod:`gtbench.results` and everything
below it, never :mod:`gtbench.tune`, :mod:`gtbench.cli` or :mod:`gtbench.api`.
"""
