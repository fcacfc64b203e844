"""Verdicts that say what the data show: each comparison is one of four words, with the seeds it would take to
decide when it is neither.

- ``better`` / ``worse``: Welch's two-sided t-test on the per-seed scores finds a difference (alpha 0.05).
- ``equivalent``: two one-sided tests (TOST, Schuirmann 1987; Welch's standard error and degrees of freedom)
  put the difference inside +-margin (alpha 0.05): the 90% CI of the difference lies inside the margin.
- ``inconclusive``: neither. ``seeds_needed`` is the number of seeds a side that would give the equivalence
  test 80% power at the observed variances if the true difference were zero; where the point estimate lies
  outside the margin, ``seeds_to_detect`` is the number that would give Welch's test 80% power to detect that
  difference. Both from the noncentral t distribution (the TOST power is its Bonferroni lower bound, so the
  count errs high); tests/test_verdicts.py checks them by simulation.

A difference the test finds is reported as ``better``/``worse`` even when it lies inside the margin (a real
but small difference); the tables carry ``p_tost`` beside it. The margin is declared per algorithm in its
config (``verdict.equivalence_margin``, a fraction of the baseline's mean score above a uniformly random
policy's) before results are seen.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
POWER = 0.80
MAX_SEEDS = 1000
"""``seeds_needed`` above this is reported as None (printed '>1000')."""

EQUIVALENT, BETTER, WORSE, INCONCLUSIVE, NOT_APPLICABLE = "equivalent", "better", "worse", "inconclusive", "n/a"
VERDICTS = (EQUIVALENT, BETTER, WORSE, INCONCLUSIVE)
SYMBOLS = {EQUIVALENT: "=", BETTER: "▲", WORSE: "▼", INCONCLUSIVE: "?", NOT_APPLICABLE: "·"}
LEGEND = (
    "= equivalent (inside the margin by TOST), ▲ better, ▼ worse (Welch's t-test), ? inconclusive (n: seeds a side "
    "the equivalence test would need), all at alpha 0.05; (Holm x) where Holm's correction across the report's "
    "envs changes the word"
)
RULE = (
    f"Welch's two-sided t-test on per-seed scores (alpha {ALPHA}): 'better'/'worse' if significant; else "
    f"'equivalent' if two one-sided tests (alpha {ALPHA}: the 90% CI of the difference) put it inside the "
    "config's equivalence margin (a fraction of the baseline's mean above a random policy's); else "
    f"'inconclusive', with the seeds a side for {POWER:.0%} power"
)


@dataclass(frozen=True)
class Verdict:
    word: str
    diff: float  # mean(tested) - mean(baseline)
    diff_low: float  # the 90% Welch CI of the difference (the interval TOST checks against the margin)
    diff_high: float
    margin: float  # in score units; NaN where none could be set
    p_welch: float
    p_tost: float
    seeds_needed: int | None = None
    seeds_to_detect: int | None = None

    def as_row(self) -> dict:
        return asdict(self)

    @property
    def has_margin(self) -> bool:
        return bool(np.isfinite(self.margin) and self.margin > 0)

    def needed_text(self) -> str:
        """An inconclusive verdict's seeds a side for the equivalence test ('' otherwise)."""
        return seeds_text(self.seeds_needed) if self.word == INCONCLUSIVE and self.has_margin else ""

    def detect_text(self) -> str:
        """An inconclusive verdict's seeds a side for Welch's test to detect the observed difference, where the
        estimate lies outside the margin (or there is none); '' otherwise."""
        outside = not self.has_margin or abs(self.diff) > self.margin
        return seeds_text(self.seeds_to_detect) if self.word == INCONCLUSIVE and outside else ""


def margin_for(baseline_mean: float, random_score: float, fraction: float) -> float:
    """+-``fraction`` of the baseline's mean score above a uniformly random policy's (NaN without one)."""
    return float(fraction * abs(baseline_mean - random_score))


def _welch_df(va: float, vb: float, na: float, nb: float) -> float:
    sa, sb = va / na, vb / nb
    if sa + sb == 0:
        return math.inf
    return (sa + sb) ** 2 / (sa**2 / (na - 1) + sb**2 / (nb - 1))


def equivalence_power(n: np.ndarray | int, va: float, vb: float, margin: float, alpha: float = ALPHA) -> np.ndarray:
    """TOST's power at a true difference of 0 with ``n`` seeds a side and true variances ``va``, ``vb``:
    1 - 2 P(T' <= t_crit), T' noncentral t with noncentrality margin / se (a lower bound)."""
    n = np.asarray(n, dtype=float)
    if va + vb == 0:
        return np.where(margin > 0, 1.0, 0.0) * np.ones_like(n)
    se = np.sqrt((va + vb) / n)
    df = (va + vb) ** 2 * (n - 1) / (va**2 + vb**2)
    crit = stats.t.ppf(1 - alpha, df)
    return np.clip(1 - 2 * stats.nct.cdf(crit, df, margin / se), 0.0, 1.0)


def welch_power(n: np.ndarray | int, va: float, vb: float, diff: float, alpha: float = ALPHA) -> np.ndarray:
    """Welch's two-sided test's power to detect a true difference ``diff`` with ``n`` seeds a side."""
    n = np.asarray(n, dtype=float)
    if va + vb == 0:
        return np.where(diff != 0, 1.0, 0.0) * np.ones_like(n)
    se = np.sqrt((va + vb) / n)
    df = (va + vb) ** 2 * (n - 1) / (va**2 + vb**2)
    crit = stats.t.ppf(1 - alpha / 2, df)
    return 1 - stats.nct.cdf(crit, df, diff / se) + stats.nct.cdf(-crit, df, diff / se)


def seeds_for(power, target: float = POWER) -> int | None:
    """The fewest seeds a side (2 to MAX_SEEDS) at which ``power(n)`` (increasing in n) reaches ``target``; None
    if none does. Found by doubling, then bisection."""
    reaches = lambda n: bool(power(n) >= target)  # noqa: E731
    if reaches(2):
        return 2
    low, high = 2, 4
    while not reaches(high):
        if high >= MAX_SEEDS:
            return None
        low, high = high, min(2 * high, MAX_SEEDS)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if reaches(mid) else (mid, high)
    return high


def decide(tested: np.ndarray, baseline: np.ndarray, margin: float, alpha: float = ALPHA) -> Verdict:
    """The verdict on ``tested`` against ``baseline`` (per-seed scores) with equivalence margin ``margin``."""
    a, b = np.asarray(tested, dtype=float), np.asarray(baseline, dtype=float)
    nan = float("nan")
    if len(a) < 2 or len(b) < 2:
        return Verdict(NOT_APPLICABLE, nan, nan, nan, margin, nan, nan)
    diff = float(a.mean() - b.mean())
    va, vb = float(a.var(ddof=1)), float(b.var(ddof=1))
    se = math.sqrt(va / len(a) + vb / len(b))
    df = _welch_df(va, vb, len(a), len(b))
    has_margin = bool(np.isfinite(margin) and margin > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if se == 0:
            p_welch = 1.0 if diff == 0 else 0.0
            p_tost = (0.0 if abs(diff) < margin else 1.0) if has_margin else nan
        else:
            p_welch = float(2 * stats.t.sf(abs(diff) / se, df))
            p_tost = (
                float(max(stats.t.sf((diff + margin) / se, df), stats.t.cdf((diff - margin) / se, df)))
                if has_margin
                else nan
            )
    half = float(stats.t.ppf(1 - alpha, df) * se) if se > 0 else 0.0
    word = word_for(p_welch, p_tost, diff, alpha)
    needed = to_detect = None
    if word == INCONCLUSIVE:
        if has_margin:
            needed = seeds_for(lambda n: equivalence_power(n, va, vb, margin, alpha))
        if not has_margin or abs(diff) > margin:
            to_detect = seeds_for(lambda n: welch_power(n, va, vb, diff, alpha))
    return Verdict(word, diff, diff - half, diff + half, margin, p_welch, p_tost, needed, to_detect)


def word_for(p_welch: float, p_tost: float, diff: float, alpha: float = ALPHA) -> str:
    """The verdict word from the two tests' p-values (NaN p_tost: no margin, never 'equivalent')."""
    if not np.isfinite(p_welch):
        return NOT_APPLICABLE
    if p_welch < alpha:
        return BETTER if diff > 0 else WORSE
    if np.isfinite(p_tost) and p_tost < alpha:
        return EQUIVALENT
    return INCONCLUSIVE


def holm(pvalues: list[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaNs stay NaN and do not count in the family)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def seeds_text(n: int | None) -> str:
    return f">{MAX_SEEDS}" if n is None else str(n)
