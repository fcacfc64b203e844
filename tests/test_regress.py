"""The regression gate: a deliberate bug is flagged, the unchanged code is not (on fresh seeds)."""

import numpy as np
import pandas as pd
import pytest

from experiments.tools.regress import baseline_path, compare, regress


def _df(scores):
    return pd.DataFrame([{"env": env, "seed": i, "score": s} for env, xs in scores.items() for i, s in enumerate(xs)])


def test_compare_flags_only_a_significant_drop():
    rng = np.random.default_rng(0)
    base = _df({"A": rng.normal(100, 5, 5), "B": rng.normal(-50, 5, 5)})
    same = _df({"A": rng.normal(100, 5, 5), "B": rng.normal(-50, 5, 5)})
    worse = _df({"A": rng.normal(60, 5, 5), "B": rng.normal(-90, 5, 5)})
    assert not compare(same, base)["regression"]
    result = compare(worse, base)
    assert result["regression"] and result["ci_high"] < 0.5 and result["p_improvement"] == 0.0


@pytest.mark.slow
def test_unchanged_code_is_not_flagged(capsys):
    assert baseline_path("ppo").exists(), "the committed baseline is part of the repository"
    assert regress("ppo", workers=2) == 0
    assert "no significant regression" in capsys.readouterr().out


@pytest.mark.slow
def test_wrong_sign_in_advantage_normalisation_is_flagged(monkeypatch, capsys):
    import replications.ppo as ppo

    original = ppo.clipped_surrogate_loss
    # the bug: advantages normalised with the wrong sign, (mean - A) / std instead of (A - mean) / std
    monkeypatch.setattr(ppo, "clipped_surrogate_loss", lambda lp, old, adv, clip: original(lp, old, -adv, clip))
    assert regress("ppo", workers=1) == 1  # in this process, so the patched code is what runs
    assert "REGRESSION" in capsys.readouterr().out
