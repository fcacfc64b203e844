"""Any numerical change to an algorithm shows up here at once (see experiments/fingerprint.py)."""

import json

import numpy as np
import pytest

from experiments.fingerprint import fingerprint, golden_path
from experiments.registry import ALGOS

RTOL = 1e-6


@pytest.mark.parametrize("algo", list(ALGOS))
def test_first_iterations_match_the_golden_fingerprint(algo):
    golden = json.loads(golden_path(algo).read_text())
    now = fingerprint(algo)
    assert now["progress"].keys() == golden["progress"].keys()
    for key, values in golden["progress"].items():
        np.testing.assert_allclose(now["progress"][key], values, rtol=RTOL, atol=1e-9, err_msg=f"{algo} {key}")
    np.testing.assert_allclose(now["episode_returns"], golden["episode_returns"], rtol=RTOL)
    assert now["parameters"].keys() == golden["parameters"].keys()
    for name, values in golden["parameters"].items():
        np.testing.assert_allclose(now["parameters"][name], values, rtol=RTOL, atol=1e-9, err_msg=f"{algo} {name}")


def test_a_deliberate_change_breaks_the_fingerprint(monkeypatch):
    import replications.ppo as ppo

    golden = json.loads(golden_path("ppo").read_text())
    original = ppo.clipped_surrogate_loss
    monkeypatch.setattr(ppo, "clipped_surrogate_loss", lambda lp, old, adv, clip: original(lp, old, -adv, clip))
    now = fingerprint("ppo")  # a wrong sign on the advantages
    assert not np.allclose(now["progress"]["policy_loss"], golden["progress"]["policy_loss"], rtol=RTOL)
