"""Results: the records one per cell, and every table and page rebuilt from them.

Owns the one record writer and its readers, staleness (``records``), what a record says
about its environment (``provenance``), ``runs.csv``/``leaderboard.csv``/``ranks.csv`` and
comparisons (``leaderboard``), the HTML report (``report``) and rebuilding a generator from
its run folder (``generate``). It may import :mod:`gtbench.plan`, :mod:`gtbench.train`,
:mod:`gtbench.measure`, :mod:`gtbench.plugin`, :mod:`gtbench.files` and
:mod:`gtbench.errors`; it never runs a cell.
"""
