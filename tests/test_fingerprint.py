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


@pytest.mark.parametrize("algo", list(ALGOS))
def test_a_golden_fingerprint_is_rewritten_only_with_a_passing_gate_record(algo):
    """A golden may change (``rlrepro fingerprint --update``) only together with a passing gate record for that
    golden (``rlrepro regress ALGO`` writes results/regress/ALGO-gate.json): an algorithm whose numbers changed
    cannot land without having been through the regression gate, and a record vouches only for the suite it ran
    (a changed ``regress`` budget needs a new baseline and record). Another CPU kind's golden added for unchanged
    code (``--add-kind``) keeps the record valid."""
    from experiments.tools.fingerprint import golden_hashes
    from experiments.tools.regress import baseline_path, gate_record_path, suite_ids

    if not baseline_path(algo).exists():
        pytest.skip(f"{algo} has no regression gate yet (no results/regress/{algo}-baseline.csv)")
    fix = f"run 'rlrepro regress {algo}' (it must pass) and commit results/regress/{algo}-gate.json with the golden"
    path = gate_record_path(algo)
    assert path.exists(), f"{algo}: no gate record; {fix}"
    record = json.loads(path.read_text())
    assert record["passed"], f"{algo}: the last gate record did not pass (P {record['p_improvement']}); {fix}"
    assert not record["dirty"], f"{algo}: the gate record was made from a tree with uncommitted changes; {fix}"
    assert record.get("suite") == suite_ids(algo), f"{algo}: the gate record ran another suite than the config's; {fix}"
    now = golden_hashes(algo)
    shared = set(now) & set(record["golden"])
    assert shared, f"{algo}: the gate record vouches for no golden fingerprint that exists now; {fix}"
    changed = sorted(kind for kind in shared if now[kind] != record["golden"][kind])
    assert not changed, f"{algo}: golden fingerprint(s) {changed} changed since the passing gate record; {fix}"
