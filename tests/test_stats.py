"""Paired statistics checked against values computed by hand."""

import math

import numpy as np
import pytest

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
    assert (result.ci_low, result.ci_high) == (1.0, 3.0)  # 3 values: [min, max]


def test_consistent_differences_are_a_verdict_in_either_direction():
    base = {0: 100.0, 1: 200.0, 2: 300.0}
    worse = {s: v + d for (s, v), d in zip(base.items(), (10.0, 11.0, 12.0), strict=True)}
    better = {s: v - d for (s, v), d in zip(base.items(), (10.0, 11.0, 12.0), strict=True)}
    t = 11.0 / (1.0 / math.sqrt(3.0))
    up, down = stats.paired_comparison(base, worse), stats.paired_comparison(base, better)
    assert up.p == pytest.approx(_t_df2_two_sided_p(t), rel=1e-9)  # 0.002743
    assert up.verdict == "worse" and down.verdict == "better"
    assert down.delta_mean == -11.0 and up.p == pytest.approx(down.p)


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
    assert math.isnan(result.p) and result.test == ""
    assert result.delta_mean == pytest.approx(148.5)
    empty = stats.paired_comparison({0: 1.0}, {1: 1.0})
    assert empty.n == 0 and empty.verdict == "too few seeds" and math.isnan(empty.delta_mean)


def test_identical_and_constant_differences():
    same = stats.paired_comparison({0: 1.0, 1: 2.0, 2: 3.0}, {0: 1.0, 1: 2.0, 2: 3.0})
    assert same.p == 1.0 and same.verdict == "tie"
    shifted = stats.paired_comparison({0: 1.0, 1: 2.0, 2: 3.0}, {0: 0.0, 1: 1.0, 2: 2.0})
    assert shifted.p == 0.0 and shifted.verdict == "better"


def test_bootstrap_ci_by_hand_at_four_values():
    # 4**4 = 256 equally likely resamples of [0, 1, 2, 10]. Low end: the 7th smallest
    # mean (first with CDF >= 2.5 %): 0 (1 resample), 0.25 (4), 0.5 (6 + 4) -> 0.5.
    # High end: the 250th: 10 (1), 8 (4), 7.75 (4, ranks 248-251) -> 7.75.
    assert stats.bootstrap_mean_ci([0.0, 1.0, 2.0, 10.0]) == (0.5, 7.75)
    assert stats.bootstrap_mean_ci([5.0, 1.0, 3.0]) == (1.0, 5.0)
    assert stats.bootstrap_mean_ci([2.0, 4.0]) == (2.0, 4.0)
    assert all(math.isnan(v) for v in stats.bootstrap_mean_ci([1.0]))
    assert stats.bootstrap_mean_ci([1.0, float("nan"), 3.0]) == (1.0, 3.0)


def test_bootstrap_ci_of_many_seeds_is_seeded_and_close_to_the_normal_interval():
    values = np.random.default_rng(1).normal(50.0, 10.0, size=12)
    first, second = stats.bootstrap_mean_ci(values), stats.bootstrap_mean_ci(values)
    assert first == second
    half = 1.96 * values.std(ddof=0) / math.sqrt(len(values))
    assert first[0] == pytest.approx(values.mean() - half, abs=0.3 * half)
    assert first[1] == pytest.approx(values.mean() + half, abs=0.3 * half)


def test_holm_adjustment_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3*0.01, max(0.03, 2*0.03), max(0.06, 1*0.04)
    adjusted = stats.holm([0.01, 0.04, float("nan"), 0.03])
    assert adjusted[0] == pytest.approx(0.03) and math.isnan(adjusted[2])
    assert adjusted[1] == pytest.approx(0.06) and adjusted[3] == pytest.approx(0.06)


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
