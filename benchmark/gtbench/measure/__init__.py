"""Measuring an adapted generator and comparing measurements.

Owns the evaluation protocol (``evaluation``: FID/KID through torch-fidelity, memorisation,
diversity, cached reference features), what identifies an evaluation (``eval_settings``,
the protocol version) and a feature space (``feature_identity``: the reference cache's
key, re-exported by :mod:`gtbench.plan.identity`), and the paired statistics over seeds
(``stats``). It may import :mod:`gtbench.plugin`, :mod:`gtbench.files` and
:mod:`gtbench.errors`; it knows no trainer, plan or record.
"""
