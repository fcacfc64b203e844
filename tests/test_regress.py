"""The regression gate: a deliberate bug is flagged, the unchanged code is not (on fresh seeds)."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from experiments.tools.fingerprint import golden_hashes
from experiments.tools.regress import ALPHA, RULE, baseline_path, compare, gate_record_path, regress, suite_ids


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
    """PPO's suite: continuous control (InvertedPendulum-v5, Gaussian policy, observation normalisation) and a
    discrete task whose episodes also hit the time limit (Acrobot-v1)."""
    assert regress("ppo", workers=1, seed_parallel=5, baseline_dir=_baseline_copy(tmp_path, "ppo")) == 0
    out = capsys.readouterr().out
    assert "no significant regression" in out and "InvertedPendulum-v5" in out
    record = json.loads(gate_record_path("ppo", tmp_path).read_text())
    assert record["passed"] and record["golden"] == golden_hashes("ppo") and record["rule"] == RULE
    assert min(record["p_drop_holm"].values()) >= ALPHA and len(record["scores"]["InvertedPendulum-v5"]) == 5
    assert record["suite"] == suite_ids("ppo")


@pytest.mark.slow
def test_a_planted_wrong_sign_on_the_advantages_is_flagged(capsys, tmp_path):
    """The planted bug runs from a mutated copy of the code (the working tree untouched); no record is
    written for a mutant."""
    directory = _baseline_copy(tmp_path, "ppo")
    assert regress("ppo", workers=1, seed_parallel=5, baseline_dir=directory, mutant="ppo-advantage-sign") == 1
    assert "REGRESSION" in capsys.readouterr().out
    assert not gate_record_path("ppo", directory).exists()
