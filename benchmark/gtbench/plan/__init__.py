"""Planning: from a suite to cells, each with its identity (``run_id``).

Owns the suite files and their validation (``suite``, ``tune_settings``), the cross
product of a suite into resolved, typed cells (``cells``) and identity: every "same run /
same configuration / same evaluation / same features" question (``identity``). It may import
:mod:`gtbench.train` (the trainer's settings and version are part of a cell),
:mod:`gtbench.measure` (the evaluation settings), :mod:`gtbench.plugin`,
:mod:`gtbench.files` and :mod:`gtbench.errors`; it runs nothing and reads no record.
"""
