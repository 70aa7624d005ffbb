"""What identifies an evaluation: its settings and the protocol version.

Kept apart from :mod:`gtbench.measure.evaluation` (which imports torch-fidelity, torchvision and
torch) so that planning a sweep, judging records stale and reading the tables stay cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DEFAULT_REFERENCE", "PROTOCOL_VERSION", "EvalSettings"]

# Part of every run_id: bump whenever a change to the evaluation can change a metric, so
# records made under the older protocol are stale, never "done".
# 2: KID from kernel matrices computed once for all subsets (equal to torch-fidelity's
#    per-subset loop within float64 rounding, not bitwise)
# 3: every evaluation measures adaptation (share of samples a source-vs-target classifier
#    assigns to the target), curves carry memorisation, diversity and adaptation
# 4: the adaptation classifier is a balanced cosine nearest-neighbour vote (a linear one
#    put most of a fine-tuned generator's cats in the source domain)
PROTOCOL_VERSION = "4"

# The method paired statistics compare with unless told otherwise (`--reference`): the
# one place a method name is part of the protocol.
DEFAULT_REFERENCE = "finetune"


@dataclass(frozen=True)
class EvalSettings:
    """How an adapted generator is evaluated; part of a cell's identity."""

    n_samples: int = 1000
    kid_subset_size: int = 1000  # requested; used = min(requested, n_real, n_fake), recorded
    kid_subsets: int = 100
    # does not change any result, only speed and memory: left out of run_id
    batch_size: int = field(default=64, metadata={"identity": False})
