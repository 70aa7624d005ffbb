"""Paired statistics for comparing transfer methods over seeds.

The seed fixes the K training shots, so two methods run with the same seed saw the same
data: they are compared *paired*, seed by seed. Everything here is plain numpy/scipy on
small arrays and deterministic (fixed resampling seed), so a table rebuilt from the same
records is identical bit for bit.

One procedure gives each verdict and the interval printed beside it, so the two can never
disagree:

- :func:`paired_comparison`: the mean paired difference, the paired t-test's two-sided p
  and *its own* confidence interval (scipy's ``ttest_rel(...).confidence_interval()``):
  the interval excludes 0 exactly when p < α, which is the per-comparison ``verdict``. An
  exact sign-flip or Wilcoxon test cannot reject below 6 pairs (its smallest two-sided p
  is 2 / 2**n), hence the t-test, under its normality assumption; below
  :data:`MIN_PAIRS` shared seeds no test is run and the verdict is "too few seeds".
- :func:`family_verdicts`: Holm's step-down procedure over a *family* of comparisons (a
  target's methods against its reference): adjusted p, a family-wise verdict, and beside
  it the t interval at the Bonferroni level of the step that decided the comparison
  (α / number of comparisons still open at that step). A comparison Holm rejects has an
  interval that excludes 0; one it keeps has one that contains 0. The first step's
  level is Bonferroni's over the whole family (a simultaneous interval); later steps'
  are narrower, as Holm's tests are.
- Bootstrap only where no test is implied: :func:`bootstrap_mean_ci` (the mean FID of a
  row) and :func:`mean_ranks` (mean rank over targets), both through
  ``scipy.stats.bootstrap``, BCa where the sample allows and the percentile interval
  where BCa is degenerate (each says which it used).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05
MIN_PAIRS = 3  # shared seeds needed for a verdict (t-test df >= 2)
CONFIDENCE = 0.95
N_BOOTSTRAP = 9_999
N_RANK_BOOTSTRAP = 2_000
BOOTSTRAP_SEED = 0
TEST_NAME = "paired t-test"
BCA, PERCENTILE = "BCa", "percentile"

BETTER, WORSE, TIE, TOO_FEW = "better", "worse", "tie", "too few seeds"


def _bootstrap(
    data: tuple[np.ndarray, ...],
    statistic,  # noqa: ANN001 - vectorised statistic(*samples, axis)
    *,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """scipy's bootstrap: BCa, and the percentile interval (from the same resamples) for
    every output whose BCa interval is not finite. Returns (low, high, used_bca)."""
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate BCa: detected below and replaced
        bca = stats.bootstrap(
            data,
            statistic,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="BCa",
            vectorized=True,
            rng=np.random.default_rng(seed),
        )
        percentile = stats.bootstrap(
            data,
            statistic,
            n_resamples=0,
            confidence_level=confidence,
            method="percentile",
            vectorized=True,
            bootstrap_result=bca,
        )
    low, high = (np.atleast_1d(np.asarray(v, dtype=float)) for v in bca.confidence_interval)
    used = np.isfinite(low) & np.isfinite(high)
    p_low, p_high = (
        np.atleast_1d(np.asarray(v, dtype=float)) for v in percentile.confidence_interval
    )
    return np.where(used, low, p_low), np.where(used, high, p_high), used


@dataclass(frozen=True)
class MeanCI:
    low: float
    high: float
    method: str  # BCA, PERCENTILE, or "" when there is no interval


def bootstrap_mean(
    values: Sequence[float] | np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
) -> MeanCI:
    """Bootstrap CI of the mean of ``values`` (NaNs dropped) by ``scipy.stats.bootstrap``:
    BCa, or the percentile interval when BCa is degenerate (e.g. identical values); no
    interval below two values. With 2–3 values it describes how spread the seeds are more
    than how sure the mean is."""
    data = np.asarray(values, dtype=float)
    data = data[~np.isnan(data)]
    if len(data) < 2:
        return MeanCI(math.nan, math.nan, "")
    if np.all(data == data[0]):
        return MeanCI(float(data[0]), float(data[0]), PERCENTILE)
    low, high, used = _bootstrap(
        (data,), np.mean, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    return MeanCI(float(low[0]), float(high[0]), BCA if used[0] else PERCENTILE)


def bootstrap_mean_ci(values: Sequence[float] | np.ndarray, **kwargs: float) -> tuple[float, float]:
    """(low, high) of :func:`bootstrap_mean`."""
    result = bootstrap_mean(values, **kwargs)  # type: ignore[arg-type]
    return result.low, result.high


@dataclass(frozen=True)
class PairedResult:
    """``b - a`` over the seeds both have (lower is better: negative means b is better).
    ``ci_low``/``ci_high``: the paired t-test's own interval at ``confidence``."""

    n: int
    delta_mean: float
    ci_low: float
    ci_high: float
    p: float
    test: str
    verdict: str
    sd: float = math.nan  # sample std of the differences
    confidence: float = CONFIDENCE

    def interval(self, confidence: float) -> tuple[float, float]:
        """The paired t interval of the mean difference at ``confidence``."""
        return t_interval(self.n, self.delta_mean, self.sd, confidence)


def t_interval(n: int, mean: float, sd: float, confidence: float) -> tuple[float, float]:
    """mean ± t_{n-1, (1+confidence)/2} · sd / √n (what ``ttest_rel`` reports); [mean,
    mean] when the differences do not vary."""
    from scipy import stats

    if n < MIN_PAIRS or math.isnan(sd):
        return math.nan, math.nan
    if sd == 0:
        return mean, mean
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return mean - half, mean + half


def paired_t(deltas: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Two-sided p and confidence interval of the paired t-test on the differences
    ``deltas`` (scipy's ``ttest_rel``). Identical differences have no spread: p = 1 and
    the interval [0, 0] when they are all zero; p = 0 and [d, d] otherwise (the t
    statistic is infinite)."""
    from scipy import stats

    if np.all(deltas == deltas[0]):
        d = float(deltas[0])
        return (1.0 if d == 0 else 0.0), d, d
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # near-identical differences
        result = stats.ttest_rel(deltas, np.zeros_like(deltas))
        low, high = result.confidence_interval(confidence)
    return float(result.pvalue), float(low), float(high)


def paired_t_p(deltas: np.ndarray) -> float:
    """Two-sided p of the paired t-test on ``deltas`` (see :func:`paired_t`)."""
    return paired_t(deltas)[0]


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
    """Compare ``b`` with ``a`` (both seed → value, lower is better) over shared seeds:
    the paired t-test's p, its (1 − ``alpha``) interval and the verdict at ``alpha``."""
    seeds = sorted(s for s in set(a) & set(b) if not (math.isnan(a[s]) or math.isnan(b[s])))
    deltas = np.array([b[s] - a[s] for s in seeds], dtype=float)
    n = len(deltas)
    confidence = 1.0 - alpha
    if n == 0:
        return PairedResult(0, math.nan, math.nan, math.nan, math.nan, "", TOO_FEW)
    mean = float(deltas.mean())
    sd = float(deltas.std(ddof=1)) if n > 1 else math.nan
    if n < MIN_PAIRS:
        return PairedResult(n, mean, math.nan, math.nan, math.nan, "", TOO_FEW, sd, confidence)
    p, low, high = paired_t(deltas, confidence)
    return PairedResult(
        n, mean, low, high, p, TEST_NAME, verdict_of(n, mean, p, alpha), sd, confidence
    )


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
class FamilyResult:
    """One comparison judged within its family (Holm)."""

    p_holm: float
    verdict: str
    ci_low: float
    ci_high: float
    confidence: float  # level of the interval: 1 − α / (comparisons open at its step)


def family_verdicts(results: Sequence[PairedResult], *, alpha: float = ALPHA) -> list[FamilyResult]:
    """Holm over ``results`` (comparisons without a test are not counted): each one's
    adjusted p, family-wise verdict, and the t interval at the Bonferroni level of the
    step that decided it — the step that rejected it, or for every kept comparison the
    step where Holm stopped. Rejected ⇔ adjusted p < α ⇔ that interval excludes 0."""
    adjusted = holm([r.p if r.verdict != TOO_FEW else math.nan for r in results])
    tested = [i for i, p in enumerate(adjusted) if not math.isnan(p)]
    order = sorted(tested, key=lambda i: (results[i].p, i))
    m = len(order)
    level: dict[int, float] = {}
    step = 0
    for step, i in enumerate(order):  # noqa: B007 - step is read after the loop
        if adjusted[i] < alpha:
            level[i] = 1.0 - alpha / (m - step)
        else:
            break
    else:
        step = m
    for i in order[step:]:
        level[i] = 1.0 - alpha / (m - step)
    out = []
    for i, result in enumerate(results):
        if i not in level:
            out.append(FamilyResult(math.nan, result.verdict, math.nan, math.nan, math.nan))
            continue
        low, high = result.interval(level[i])
        verdict = verdict_of(result.n, result.delta_mean, adjusted[i], alpha)
        out.append(FamilyResult(adjusted[i], verdict, low, high, level[i]))
    return out


def disagrees(verdict: str, low: float, high: float) -> bool:
    """Whether a verdict and its interval say different things (an interval excluding 0
    beside a tie, or containing 0 beside better/worse)."""
    if verdict not in (BETTER, WORSE, TIE) or math.isnan(low) or math.isnan(high):
        return False
    excludes = high < 0 or low > 0
    return excludes != (verdict != TIE)


@dataclass(frozen=True)
class RankRow:
    method: str
    mean_rank: float
    rank_ci95_low: float
    rank_ci95_high: float
    n_targets: int
    ci_method: str = BCA


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
    better; a method is ranked on the targets it has), with a bootstrap CI from
    ``scipy.stats.bootstrap``: every target's seeds are one sample, resampled with
    replacement independently of the other targets (the same seeds for all of a target's
    methods, keeping the pairing); each replicate ranks the resampled means. BCa where it
    is defined, else the percentile interval of the same replicates (``ci_method``)."""
    tables, names = [], []
    for target in targets:
        methods = sorted(target)
        if len(methods) < 2:
            continue
        seeds = sorted({s for values in target.values() for s in values})
        tables.append(
            np.array([[target[m].get(s, math.nan) for s in seeds] for m in methods], dtype=float)
        )
        names.append(methods)
    if not tables:
        return []
    everyone = sorted({m for methods in names for m in methods})
    position = {m: k for k, m in enumerate(everyone)}
    counts = np.zeros(len(everyone))
    for methods in names:
        for m in methods:
            counts[position[m]] += 1

    # a target with one seed cannot be resampled: it keeps its one seed in every replicate
    varying = [k for k, table in enumerate(tables) if table.shape[1] >= 2]

    def total_rank(*indices: np.ndarray, axis: int = -1) -> np.ndarray:
        """Mean rank of every method (axis 0) for each resample (the other axes); one
        index array per target of ``varying``."""
        drawn = dict(zip(varying, indices, strict=True))
        shape = np.moveaxis(np.asarray(indices[0]), axis, -1).shape[:-1] if indices else ()
        total = np.zeros((len(everyone), *shape))
        for k, (table, methods) in enumerate(zip(tables, names, strict=True)):
            if k in drawn:
                idx = np.moveaxis(np.asarray(drawn[k]), axis, -1).astype(np.intp)
            else:
                idx = np.zeros((*shape, table.shape[1]), dtype=np.intp)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN resamples rank last
                means = np.nanmean(table[:, idx], axis=-1)  # methods × resamples
            total[[position[m] for m in methods]] += _ranks(means)
        return total / counts.reshape((-1,) + (1,) * (total.ndim - 1))

    samples = tuple(np.arange(tables[k].shape[1], dtype=float) for k in varying)
    observed = total_rank(*samples)
    if not samples:
        low = high = observed
        used = np.zeros(len(everyone), dtype=bool)
    else:
        low, high, used = _bootstrap(
            samples, total_rank, confidence=confidence, n_resamples=n_resamples, seed=seed
        )
    rows = [
        RankRow(
            m,
            float(observed[k]),
            float(low[k]),
            float(high[k]),
            int(counts[k]),
            BCA if used[k] else PERCENTILE,
        )
        for k, m in enumerate(everyone)
    ]
    return sorted(rows, key=lambda r: (r.mean_rank, r.method))
