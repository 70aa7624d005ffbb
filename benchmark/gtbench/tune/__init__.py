"""Equal tuning: the same number of seeded trials per method, selected on validation.

Owns the trial plan, the selection and the final plan (``tuning``) and the
default-vs-tuned table (``tuning_table``). It may import :mod:`gtbench.results` and
everything below it; it never runs a cell itself (``gtbench tune`` hands its plans to
:mod:`gtbench.launch`).
"""
