"""Training: the one shared GAN fine-tuning loop and the method hooks it calls.

Owns the trainer (``trainer``: losses, R1, EMA, counted G/D steps, the training log), the
method base class and its hooks (``method``), the phases of one budget (``phases``), the
device a run uses (``device``), and the from-scratch pretraining recipe of built-in
sources (``pretrain``). It may import :mod:`gtbench.measure` (pretraining draws sample
grids), :mod:`gtbench.plugin`, :mod:`gtbench.files` and :mod:`gtbench.errors`; it knows
no suite, cell or record.
"""
