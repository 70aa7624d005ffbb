"""Paired statistics checked against values computed by hand."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from gtbench.measure import stats


def _t_df2_two_sided_p(t):
    # Student's t with 2 degrees of freedom has the closed-form CDF 1/2 + t / (2 sqrt(t^2 + 2))
    return 1.0 - abs(t) / math.sqrt(t * t + 2.0)


def test_paired_t_test_matches_the_closed_form_at_three_seeds():
    finetune = {0: 10.0, 1: 12.0, 2: 14.0}
    method = {0: 11.0, 1: 14.0, 2: 17.0}  # differences 1, 2, 3: mean 2, sd 1
    result = stats.paired_comparison(finetune, method)
    t = 2.0 / (1.0 / math.sqrt(3.0))
    assert result.n == 3 and result.delta_mean == 2.0
    assert result.p == pytest.approx(_t_df2_two_sided_p(t), rel=1e-12)  # 0.074180
    assert result.p == pytest.approx(0.0741799, abs=1e-7)
    assert result.verdict == "tie" and result.test == "paired t-test"
    # the t interval 2 ± t_{2, 0.975} / sqrt(3); with 2 df, F(t) = 0.975 solves to
    # t / sqrt(t^2 + 2) = 0.95, t = sqrt(2 * 0.95^2 / (1 - 0.95^2)) = 4.3027
    half = math.sqrt(2 * 0.95**2 / (1 - 0.95**2)) / math.sqrt(3.0)
    assert result.ci_low == pytest.approx(2.0 - half, rel=1e-12)
    assert result.ci_high == pytest.approx(2.0 + half, rel=1e-12)


def test_old_rule_and_new_differ_where_the_bootstrap_interval_excluded_zero():
    """Differences 1, 2, 3: the old percentile bootstrap gave [min, max] = [1, 3], which
    excludes 0 beside a "tie" (p = 0.074). The t interval contains 0, as the tie says."""
    result = stats.paired_comparison({0: 0.0, 1: 0.0, 2: 0.0}, {0: 1.0, 1: 2.0, 2: 3.0})
    assert result.verdict == "tie" and result.ci_low < 0 < result.ci_high
    assert stats.disagrees("tie", 1.0, 3.0)  # what the old table printed
    assert not stats.disagrees(result.verdict, result.ci_low, result.ci_high)


@pytest.mark.parametrize("seed", range(5))
def test_p_and_interval_equal_scipys_ttest_rel(seed):
    rng = np.random.default_rng(seed)
    n = 3 + seed
    a = rng.normal(700.0, 30.0, n)
    b = a + rng.normal(10.0, 15.0, n)
    result = stats.paired_comparison(dict(enumerate(a)), dict(enumerate(b)))
    reference = scipy_stats.ttest_rel(b, a)
    assert result.p == pytest.approx(reference.pvalue, rel=1e-10)
    low, high = reference.confidence_interval(0.95)
    assert (result.ci_low, result.ci_high) == pytest.approx((low, high), rel=1e-10)
    for level in (0.9, 0.99, 1 - 0.05 / 15):
        expected = reference.confidence_interval(level)
        assert result.interval(level) == pytest.approx(tuple(expected), rel=1e-10)


def test_consistent_differences_are_a_verdict_in_either_direction():
    base = {0: 100.0, 1: 200.0, 2: 300.0}
    worse = {s: v + d for (s, v), d in zip(base.items(), (10.0, 11.0, 12.0), strict=True)}
    better = {s: v - d for (s, v), d in zip(base.items(), (10.0, 11.0, 12.0), strict=True)}
    t = 11.0 / (1.0 / math.sqrt(3.0))
    up, down = stats.paired_comparison(base, worse), stats.paired_comparison(base, better)
    assert up.p == pytest.approx(_t_df2_two_sided_p(t), rel=1e-9)  # 0.002743
    assert up.verdict == "worse" and down.verdict == "better"
    assert down.delta_mean == -11.0 and up.p == pytest.approx(down.p)
    assert up.ci_low > 0 and down.ci_high < 0


def test_an_exact_sign_test_could_not_reject_where_the_t_test_does():
    # Why the t-test: at 3 seeds the smallest two-sided sign-flip p is 2 / 2**3 = 0.25.
    base = {0: 0.0, 1: 0.0, 2: 0.0}
    result = stats.paired_comparison(base, {0: 10.0, 1: 11.0, 2: 12.0})
    assert result.p < 0.05 < 2 / 2**3


def test_too_few_shared_seeds_never_give_a_verdict():
    a = {0: 1.0, 1: 2.0, 5: 3.0}
    b = {0: 100.0, 1: 200.0, 7: 300.0}  # only seeds 0 and 1 are shared
    result = stats.paired_comparison(a, b)
    assert result.n == 2 and result.verdict == "too few seeds"
    assert math.isnan(result.p) and result.test == "" and math.isnan(result.ci_low)
    assert result.delta_mean == pytest.approx(148.5)
    empty = stats.paired_comparison({0: 1.0}, {1: 1.0})
    assert empty.n == 0 and empty.verdict == "too few seeds" and math.isnan(empty.delta_mean)


def test_identical_and_constant_differences():
    same = stats.paired_comparison({0: 1.0, 1: 2.0, 2: 3.0}, {0: 1.0, 1: 2.0, 2: 3.0})
    assert same.p == 1.0 and same.verdict == "tie" and (same.ci_low, same.ci_high) == (0, 0)
    shifted = stats.paired_comparison({0: 1.0, 1: 2.0, 2: 3.0}, {0: 0.0, 1: 1.0, 2: 2.0})
    assert shifted.p == 0.0 and shifted.verdict == "better"
    assert (shifted.ci_low, shifted.ci_high) == (-1.0, -1.0)


def test_holm_adjustment_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3*0.01, max(0.03, 2*0.03), max(0.06, 1*0.04)
    adjusted = stats.holm([0.01, 0.04, float("nan"), 0.03])
    assert adjusted[0] == pytest.approx(0.03) and math.isnan(adjusted[2])
    assert adjusted[1] == pytest.approx(0.06) and adjusted[3] == pytest.approx(0.06)


def _family(seed: int, m: int, n: int) -> list[stats.PairedResult]:
    rng = np.random.default_rng(seed)
    ref = dict(enumerate(rng.normal(700.0, 30.0, n)))
    results = []
    for _ in range(m):
        shift = rng.choice([0.0, 8.0, -8.0, 25.0])
        other = {s: v + shift + rng.normal(0.0, 10.0) for s, v in ref.items()}
        results.append(stats.paired_comparison(ref, other))
    return results


@pytest.mark.parametrize("seed", range(4))
def test_family_verdicts_equal_statsmodels_holm(seed):
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    results = _family(seed, m=15, n=3 + seed)
    judged = stats.family_verdicts(results)
    reject, adjusted, _, _ = multipletests([r.p for r in results], alpha=0.05, method="holm")
    assert [j.p_holm for j in judged] == pytest.approx(list(adjusted), rel=1e-12)
    assert [j.verdict != "tie" for j in judged] == list(reject)
    for result, j in zip(results, judged, strict=True):
        if j.verdict != "tie":  # Holm's verdict keeps the direction of the difference
            assert j.verdict == ("better" if result.delta_mean < 0 else "worse")


def test_holm_turns_a_raw_verdict_into_a_tie_and_its_interval_says_so():
    """As the issue's digits DiffAugment (p 0.040 alone, Holm p 0.080 among 15): p 0.035
    is "worse" alone, but the second of three comparisons must beat α / 2."""
    base = dict.fromkeys(range(8), 0.0)
    close = stats.paired_comparison(base, dict(enumerate([5, 30, -10, 60, 20, 45, -5, 40])))
    strong = stats.paired_comparison(base, {s: 50.0 + 3 * s for s in range(8)})
    null = stats.paired_comparison(base, dict(enumerate([1, -1, 2, -2, 0.5, -0.5, 3, -3])))
    assert close.p == pytest.approx(0.0349, abs=1e-4)
    assert close.verdict == "worse" and close.ci_low > 0  # the old rule's verdict
    first, second, third = stats.family_verdicts([close, strong, null])
    assert first.verdict == "tie" and first.p_holm == pytest.approx(2 * close.p)
    assert first.ci_low < 0 < first.ci_high
    assert second.verdict == "worse" and second.ci_low > 0
    assert second.confidence == pytest.approx(1 - 0.05 / 3)  # step 1: Bonferroni over 3
    assert first.confidence == third.confidence == pytest.approx(1 - 0.05 / 2)  # stopped
    assert third.verdict == "tie" and third.p_holm == 1.0


@pytest.mark.parametrize("seed", range(40))
def test_no_verdict_ever_disagrees_with_its_interval(seed):
    results = _family(seed, m=1 + seed % 15, n=3 + seed % 6)
    for result in results:
        assert not stats.disagrees(result.verdict, result.ci_low, result.ci_high)
    for judged in stats.family_verdicts(results):
        assert not stats.disagrees(judged.verdict, judged.ci_low, judged.ci_high)


def test_the_first_holm_step_is_the_bonferroni_interval():
    results = _family(3, m=15, n=8)
    judged = stats.family_verdicts(results)
    first = min(range(15), key=lambda i: results[i].p)
    assert judged[first].confidence == pytest.approx(1 - 0.05 / 15)
    assert (judged[first].ci_low, judged[first].ci_high) == pytest.approx(
        results[first].interval(1 - 0.05 / 15)
    )


def test_bootstrap_mean_is_scipys_bca():
    values = np.array([752.0, 731.5, 790.25, 744.0, 760.5])
    ours = stats.bootstrap_mean(values)
    reference = scipy_stats.bootstrap(
        (values,),
        np.mean,
        n_resamples=stats.N_BOOTSTRAP,
        method="BCa",
        rng=np.random.default_rng(stats.BOOTSTRAP_SEED),
    ).confidence_interval
    assert ours.method == "BCa"
    assert (ours.low, ours.high) == pytest.approx((reference.low, reference.high), rel=1e-12)
    assert stats.bootstrap_mean(values) == ours  # seeded


def test_bootstrap_mean_falls_back_and_says_so():
    assert stats.bootstrap_mean([3.0, 3.0, 3.0]) == stats.MeanCI(3.0, 3.0, "percentile")
    single = stats.bootstrap_mean([1.0])
    assert math.isnan(single.low) and single.method == ""
    assert stats.bootstrap_mean_ci([1.0, float("nan"), 3.0]) == stats.bootstrap_mean_ci([1.0, 3.0])


def test_mean_ranks_with_fixed_orders_have_degenerate_intervals():
    seeds = (0, 1, 2)
    first = {
        "a": dict.fromkeys(seeds, 1.0),
        "b": dict.fromkeys(seeds, 2.0),
        "c": dict.fromkeys(seeds, 3.0),
    }
    second = {
        "a": dict.fromkeys(seeds, 1.0),
        "b": dict.fromkeys(seeds, 3.0),
        "c": dict.fromkeys(seeds, 2.0),
    }
    rows = {r.method: r for r in stats.mean_ranks([first, second])}
    assert rows["a"].mean_rank == 1.0 and (rows["a"].rank_ci95_low, rows["a"].rank_ci95_high) == (
        1,
        1,
    )
    assert rows["b"].mean_rank == 2.5 and (rows["b"].rank_ci95_low, rows["b"].rank_ci95_high) == (
        2.5,
        2.5,
    )
    assert rows["c"].mean_rank == 2.5 and rows["c"].n_targets == 2


def test_mean_rank_interval_widens_when_seeds_disagree():
    target = {
        "a": {0: 0.0, 1: 0.0, 2: 0.0},
        "b": {0: 1.0, 1: 9.0, 2: 1.5},  # mean 3.83: second, but below c on two seeds
        "c": {0: 2.0, 1: 2.0, 2: 2.0},
    }
    rows = {r.method: r for r in stats.mean_ranks([target])}
    assert rows["b"].mean_rank == 3.0 and rows["c"].mean_rank == 2.0
    assert (rows["b"].rank_ci95_low, rows["b"].rank_ci95_high) == (2.0, 3.0)
    assert stats.mean_ranks([target]) == stats.mean_ranks([target])  # seeded


def test_a_target_with_one_method_is_not_ranked():
    assert stats.mean_ranks([{"a": {0: 1.0}}]) == []
