"""The four-word verdicts: hand-computed cases, Holm's correction, and the power formulas checked by simulation."""

import numpy as np
import pytest
from scipy import stats

from analysis.verdicts import (
    BETTER,
    EQUIVALENT,
    INCONCLUSIVE,
    WORSE,
    decide,
    equivalence_power,
    holm,
    margin_for,
    seeds_for,
    welch_power,
)


def test_hand_computed_tost_and_welch():
    # diff -1, both variances 1, se = sqrt(2/3), df = 4 (equal n and variances)
    v = decide(np.array([1.0, 2, 3]), np.array([2.0, 3, 4]), margin=3.0)
    se = np.sqrt(2 / 3)
    assert v.p_welch == pytest.approx(stats.ttest_ind([1, 2, 3], [2, 3, 4], equal_var=False).pvalue)
    assert v.p_tost == pytest.approx(max(stats.t.sf(2 / se, 4), stats.t.cdf(-4 / se, 4)))
    assert v.p_tost == pytest.approx(0.0352, abs=1e-4)
    assert (v.diff_low, v.diff_high) == pytest.approx((-1 - 2.1318 * se, -1 + 2.1318 * se), abs=1e-4)
    assert v.word == EQUIVALENT and v.seeds_needed is None
    # a margin of 1: the 90% CI [-2.74, 0.74] is not inside [-1, 1], and no difference is found
    v = decide(np.array([1.0, 2, 3]), np.array([2.0, 3, 4]), margin=1.0)
    assert v.word == INCONCLUSIVE and v.seeds_needed > 3 and v.seeds_to_detect is None
    # the estimate outside the margin: the seeds for Welch's test to detect it, too
    v = decide(np.array([1.0, 2, 3]), np.array([2.0, 3, 4]), margin=0.5)
    assert v.word == INCONCLUSIVE and v.seeds_to_detect is not None and v.seeds_to_detect > 3


def test_words_and_edge_cases():
    rng = np.random.default_rng(0)
    a = rng.normal(1000, 10, 6)
    assert decide(a + 100, a, margin=50).word == BETTER
    assert decide(a - 100, a, margin=50).word == WORSE
    assert decide(np.full(3, 1000.0), np.full(3, 1000.0), margin=10).word == EQUIVALENT
    assert decide(np.full(3, 1000.0), np.full(3, 999.0), margin=10).word == BETTER  # no spread: any difference
    assert decide(a[:1], a, margin=10).word == "n/a"
    # no margin (NaN): never 'equivalent', and the seeds to detect the observed difference instead
    v = decide(a + 1, a + rng.normal(0, 10, 6), margin=float("nan"))
    assert v.word in (INCONCLUSIVE, BETTER, WORSE) and v.seeds_needed is None
    assert margin_for(1100.0, 100.0, 0.1) == pytest.approx(100.0)
    assert margin_for(-300.0, -500.0, 0.1) == pytest.approx(20.0)


def test_holm_by_hand():
    adjusted = holm([0.01, 0.04, 0.03, float("nan")])
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06]) and np.isnan(adjusted[3])
    assert holm([0.5]) == pytest.approx([0.5])
    assert holm([0.6, 0.6]) == pytest.approx([1.0, 1.0])


def _simulate(n: int, shift: float, margin: float, sims: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    words = [decide(rng.normal(shift, 1.0, n), rng.normal(0.0, 1.0, n), margin).word for _ in range(sims)]
    return {w: words.count(w) / sims for w in (EQUIVALENT, BETTER, WORSE, INCONCLUSIVE)}


def test_equal_distributions_by_simulation():
    """Two draws of one distribution: 'better'/'worse' at most at alpha's rate, and 'equivalent' at least at the
    power the formula predicts at the seeds it asks for (the formula is a lower bound)."""
    margin = 1.0  # one standard deviation of the per-seed score
    n = seeds_for(lambda k: equivalence_power(k, 1.0, 1.0, margin))
    assert n is not None and 10 <= n <= 30
    assert equivalence_power(n, 1.0, 1.0, margin) >= 0.8 > equivalence_power(n - 1, 1.0, 1.0, margin)
    sims = 3000  # binomial sd at 0.8: 0.007; at 0.05: 0.004
    rates = _simulate(n, 0.0, margin, sims, seed=1)
    assert rates[BETTER] + rates[WORSE] <= 0.05 + 0.012
    assert rates[EQUIVALENT] >= 0.8 - 0.02
    # fewer seeds: power falls as the formula says it does (it is a lower bound, within simulation error)
    few = _simulate(5, 0.0, margin, sims, seed=2)
    assert few[EQUIVALENT] >= equivalence_power(5, 1.0, 1.0, margin) - 0.02 and few[EQUIVALENT] < 0.5


def test_a_shift_of_twice_the_margin_is_never_equivalent():
    margin = 1.0
    rates = _simulate(20, 2 * margin, margin, 2000, seed=3)
    assert rates[EQUIVALENT] == 0.0 and rates[BETTER] > 0.9


def test_welch_power_by_simulation():
    n = seeds_for(lambda k: welch_power(k, 1.0, 1.0, 1.0))
    assert n is not None
    rng = np.random.default_rng(4)
    p = stats.ttest_ind(rng.normal(1, 1, (4000, n)), rng.normal(0, 1, (4000, n)), axis=1, equal_var=False).pvalue
    assert np.mean(p < 0.05) == pytest.approx(float(welch_power(n, 1.0, 1.0, 1.0)), abs=0.025)
    assert np.mean(p < 0.05) >= 0.78


def test_seeds_for_is_the_first_n_that_reaches_the_power():
    power = lambda n: np.asarray(n) / 100  # noqa: E731
    assert seeds_for(power) == 80 and seeds_for(power, 0.01) == 2 and seeds_for(lambda n: 0.0 * n) is None
    grid = np.arange(2, 200)
    exact = grid[np.flatnonzero(equivalence_power(grid, 4.0, 1.0, 1.5) >= 0.8)[0]]
    assert seeds_for(lambda k: equivalence_power(k, 4.0, 1.0, 1.5)) == exact
