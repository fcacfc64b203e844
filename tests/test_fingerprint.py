"""Any numerical change to an algorithm shows up here at once (see experiments/tools/fingerprint.py)."""

import json

import numpy as np
import pytest

from experiments.registry import ALGOS
from experiments.tools.fingerprint import cpu_kind, fingerprint, golden_path

RTOL = 1e-6


def _golden(algo):
    path = golden_path(algo)
    if not path.exists():  # float results differ between CPU kinds: each kind has its own goldens
        pytest.skip(f"no golden fingerprint for CPU kind {cpu_kind()}; add one with 'rlrepro fingerprint --add-kind'")
    return json.loads(path.read_text())


@pytest.mark.parametrize("algo", list(ALGOS))
def test_first_iterations_match_the_golden_fingerprint(algo):
    golden = _golden(algo)
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

    golden = _golden("ppo")
    original = ppo.clipped_surrogate_loss
    monkeypatch.setattr(ppo, "clipped_surrogate_loss", lambda lp, old, adv, clip: original(lp, old, -adv, clip))
    now = fingerprint("ppo")  # a wrong sign on the advantages
    assert not np.allclose(now["progress"]["policy_loss"], golden["progress"]["policy_loss"], rtol=RTOL)


def test_goldens_are_looked_up_by_cpu_kind_then_vendor(tmp_path, monkeypatch):
    import experiments.tools.fingerprint as fp

    monkeypatch.setattr(fp, "GOLDEN_DIR", tmp_path)
    (tmp_path / "GenuineIntel").mkdir()
    (tmp_path / "GenuineIntel" / "ppo.json").write_text("{}")
    (tmp_path / "AuthenticAMD-AVX512").mkdir()
    (tmp_path / "AuthenticAMD-AVX512" / "ppo.json").write_text("{}")
    assert fp.golden_path("ppo", "GenuineIntel-AVX512") == tmp_path / "GenuineIntel" / "ppo.json"
    assert fp.golden_path("ppo", "AuthenticAMD-AVX512") == tmp_path / "AuthenticAMD-AVX512" / "ppo.json"
    assert not fp.golden_path("ppo", "AuthenticAMD-AVX2").exists()  # no golden for that kind: the test skips
    assert cpu_kind().count("-") == 1
