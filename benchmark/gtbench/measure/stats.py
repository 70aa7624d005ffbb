"""Paired statistics for comparing transfer methods over seeds.

The seed fixes the K training shots, so two methods run with the same seed saw the same
data: they are compared *paired*, seed by seed. Everything here is plain numpy/scipy on
small arrays and deterministic (fixed resampling seed), so the leaderboard written after
every cell is reproducible bit for bit.

- :func:`bootstrap_mean_ci`: percentile bootstrap CI of a mean. Below 7 values the
  bootstrap distribution is enumerated exactly (all n**n resamples); above, 10 000
  resamples from a seeded generator. With 2 or 3 values the 95 % interval is [min, max]:
  it says how spread the seeds are, not how sure the mean is.
- :func:`paired_comparison`: mean paired difference, its bootstrap CI, a paired t-test and
  a verdict. An exact sign-flip or Wilcoxon test cannot reject below 6 pairs (its smallest
  two-sided p is 2 / 2**n), so the paired t-test (under its normality assumption) is used;
  below :data:`MIN_PAIRS` shared seeds no test is run and the verdict is "too few seeds".
- :func:`mean_ranks`: the mean rank of each method over targets, with a bootstrap CI that
  resamples seeds within every target.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

ALPHA = 0.05
MIN_PAIRS = 3  # shared seeds needed for a verdict (t-test df >= 2)
CONFIDENCE = 0.95
N_BOOTSTRAP = 10_000
N_RANK_BOOTSTRAP = 2_000
BOOTSTRAP_SEED = 0
EXACT_LIMIT = 50_000  # enumerate every resample when n**n is at most this (n <= 6)
TEST_NAME = "paired t-test"

BETTER, WORSE, TIE, TOO_FEW = "better", "worse", "tie", "too few seeds"


@lru_cache(maxsize=16)
def _all_resamples(n: int) -> np.ndarray:
    """Every index tuple of a size-n resample with replacement (n**n × n)."""
    return np.array(list(itertools.product(range(n), repeat=n)), dtype=np.intp)


def _resample_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    if n**n <= EXACT_LIMIT:
        return _all_resamples(n)
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def bootstrap_mean_ci(
    values: Sequence[float] | np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (NaNs dropped); (nan, nan) below
    two values. The percentiles are those of the bootstrap distribution itself (numpy's
    ``inverted_cdf``), so exact enumeration gives values a person can check by hand."""
    data = np.asarray(values, dtype=float)
    data = data[~np.isnan(data)]
    if len(data) < 2:
        return math.nan, math.nan
    means = data[_resample_indices(len(data), n_resamples, seed)].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.percentile(means, [100 * tail, 100 * (1 - tail)], method="inverted_cdf")
    return float(low), float(high)


@dataclass(frozen=True)
class PairedResult:
    """``b - a`` over the seeds both have (lower is better: negative means b is better)."""

    n: int
    delta_mean: float
    ci_low: float
    ci_high: float
    p: float
    test: str
    verdict: str


def paired_t_p(deltas: np.ndarray) -> float:
    """Two-sided p of the paired t-test on the differences ``deltas`` (scipy's
    ``ttest_rel``). Identical differences have no spread: p = 1 when they are all zero,
    0 otherwise (the t statistic is infinite)."""
    from scipy import stats

    if np.all(deltas == deltas[0]):
        return 1.0 if deltas[0] == 0 else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # near-identical differences
        return float(stats.ttest_rel(deltas, np.zeros_like(deltas)).pvalue)


def verdict_of(n: int, delta_mean: float, p: float, alpha: float = ALPHA) -> str:
    """better / worse / tie at ``alpha`` for a lower-is-better measure; "too few seeds"
    when no test was possible."""
    if n < MIN_PAIRS or math.isnan(p):
        return TOO_FEW
    if p < alpha:
        return BETTER if delta_mean < 0 else WORSE
    return TIE


def paired_comparison(
    a: Mapping[int, float], b: Mapping[int, float], *, alpha: float = ALPHA
) -> PairedResult:
    """Compare ``b`` with ``a`` (both seed → value, lower is better) over shared seeds."""
    seeds = sorted(s for s in set(a) & set(b) if not (math.isnan(a[s]) or math.isnan(b[s])))
    deltas = np.array([b[s] - a[s] for s in seeds], dtype=float)
    n = len(deltas)
    if n == 0:
        return PairedResult(0, math.nan, math.nan, math.nan, math.nan, "", TOO_FEW)
    low, high = bootstrap_mean_ci(deltas)
    p = paired_t_p(deltas) if n >= MIN_PAIRS else math.nan
    test = TEST_NAME if n >= MIN_PAIRS else ""
    mean = float(deltas.mean())
    return PairedResult(n, mean, low, high, p, test, verdict_of(n, mean, p, alpha))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (NaNs kept as NaN and not counted)."""
    ps = np.asarray(p_values, dtype=float)
    valid = np.flatnonzero(~np.isnan(ps))
    adjusted = np.full(len(ps), math.nan)
    order = valid[np.argsort(ps[valid], kind="stable")]
    m, running = len(order), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * ps[index]))
        adjusted[index] = running
    return adjusted.tolist()


@dataclass(frozen=True)
class RankRow:
    method: str
    mean_rank: float
    rank_ci95_low: float
    rank_ci95_high: float
    n_targets: int


def _ranks(means: np.ndarray) -> np.ndarray:
    """Ranks (1 = lowest) along axis 0, ties averaged; NaN means rank last."""
    from scipy.stats import rankdata

    filled = np.where(np.isnan(means), np.inf, means)
    return rankdata(filled, axis=0)


def mean_ranks(
    targets: Sequence[Mapping[str, Mapping[int, float]]],
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RANK_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
) -> list[RankRow]:
    """Mean rank of every method over ``targets`` (each: method → seed → value, lower is
    better; a method is ranked on the targets it has), with a percentile bootstrap CI:
    every replicate resamples the seeds of each target with replacement (the same seeds
    for all its methods, keeping the pairing) and ranks the resampled means."""
    rng = np.random.default_rng(seed)
    totals: dict[str, float] = {}
    boot: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for target in targets:
        methods = sorted(target)
        if len(methods) < 2:
            continue
        seeds = sorted({s for values in target.values() for s in values})
        table = np.array(
            [[target[m].get(s, math.nan) for s in seeds] for m in methods], dtype=float
        )
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN resamples rank last
            observed = _ranks(np.nanmean(table, axis=1))
            idx = rng.integers(0, len(seeds), size=(n_resamples, len(seeds)))
            resampled = np.nanmean(table[:, idx], axis=2)  # methods × replicates
        replicate_ranks = _ranks(resampled)
        for row, method in enumerate(methods):
            totals[method] = totals.get(method, 0.0) + observed[row]
            boot[method] = boot.get(method, np.zeros(n_resamples)) + replicate_ranks[row]
            counts[method] = counts.get(method, 0) + 1
    tail = (1.0 - confidence) / 2.0
    rows = []
    for method in totals:
        n = counts[method]
        low, high = np.percentile(
            boot[method] / n, [100 * tail, 100 * (1 - tail)], method="inverted_cdf"
        )
        rows.append(RankRow(method, totals[method] / n, float(low), float(high), n))
    return sorted(rows, key=lambda r: (r.mean_rank, r.method))
