"""The regression gate: a deliberate bug is flagged, the unchanged code is not (on fresh seeds)."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from experiments.tools.fingerprint import golden_hashes
from experiments.tools.regress import baseline_path, compare, gate_record_path, regress


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


def _baseline_copy(tmp_path, algo):
    """The committed baseline in a folder of the test's own (each check writes its gate record beside it)."""
    assert baseline_path(algo).exists(), "the committed baseline is part of the repository"
    shutil.copy(baseline_path(algo), baseline_path(algo, tmp_path))
    return tmp_path


@pytest.mark.slow
def test_unchanged_code_is_not_flagged(capsys, tmp_path):
    assert regress("ppo", workers=2, baseline_dir=_baseline_copy(tmp_path, "ppo")) == 0
    assert "no significant regression" in capsys.readouterr().out
    record = json.loads(gate_record_path("ppo", tmp_path).read_text())
    assert record["passed"] and record["golden"] == golden_hashes("ppo") and record["ci"][1] >= 0.5


@pytest.mark.slow
def test_wrong_sign_in_advantage_normalisation_is_flagged(monkeypatch, capsys, tmp_path):
    import replications.ppo as ppo

    original = ppo.clipped_surrogate_loss
    # the bug: advantages normalised with the wrong sign, (mean - A) / std instead of (A - mean) / std
    monkeypatch.setattr(ppo, "clipped_surrogate_loss", lambda lp, old, adv, clip: original(lp, old, -adv, clip))
    assert regress("ppo", workers=1, baseline_dir=_baseline_copy(tmp_path, "ppo")) == 1  # patched code in-process
    assert "REGRESSION" in capsys.readouterr().out
