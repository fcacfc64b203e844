"""The planted bugs that measure the regression gate: each applies to a copy of the code, never to the working
tree, and the runs made with one execute the mutated code."""

import hashlib
import json

import pandas as pd
import pytest

from experiments.tools import mutants
from experiments.tools.regress import run_plan
from replications.core.errors import UserError


def test_the_catalogue_covers_every_family_and_every_mutant_applies():
    by_family = pd.Series([m.family for m in mutants.MUTANTS.values()]).value_counts()
    for family in ("on-policy", "natural-gradient", "off-policy"):
        assert by_family.get(family, 0) >= 8, family
    for family in ("awr", "qprop"):
        assert by_family.get(family, 0) >= 3, family
    for m in mutants.MUTANTS.values():
        assert mutants.check_applies(m) != (mutants.ROOT / m.file).read_text(), m.name
        assert m.algos and m.what, m.name


def test_a_mutant_changes_only_its_copy_and_the_copy_goes_away():
    m = next(iter(mutants.MUTANTS.values()))
    target = mutants.ROOT / m.file
    before = hashlib.sha256(target.read_bytes()).hexdigest()
    with mutants.mutated_copy(m) as copy:
        copied = (copy / m.file).read_text()
        assert m.new in copied and copied.count(m.old) == (m.new.count(m.old) if m.old in m.new else 0)
        assert (copy / "replications" / "configs" / "ppo.yaml").exists()  # configs travel with the code
    assert not copy.exists()
    assert hashlib.sha256(target.read_bytes()).hexdigest() == before  # the working tree is untouched


def test_a_mutant_whose_target_moved_is_one_clear_error(tmp_path):
    moved = mutants.Mutant("moved", "on-policy", "replications/ppo.py", "no such text", "x", "gone", ("ppo",))
    with pytest.raises(UserError, match="mutant moved no longer applies: its target text occurs 0 times in"):
        mutants.check_applies(moved)
    with pytest.raises(UserError, match="unknown mutant 'nope'; allowed: "):
        mutants.get("nope")


def test_runs_with_a_mutant_execute_the_mutated_code(tmp_path):
    """One PPO iteration on CartPole-v1, same seed: the working code twice gives the same numbers, the mutant
    (a wrong sign on the advantages in PPO's loss) others."""
    plan = [("CartPole-v1", 0, 2048)]
    for name, mutant in (("a", None), ("b", None), ("m", "ppo-advantage-sign")):
        run_plan("ppo", "custom", plan, str(tmp_path / name), mutant=mutant)
    progress = {  # the numbers, without the wall-clock columns
        name: pd.read_csv(next((tmp_path / name).glob("runs/ppo/CartPole-v1/ours/*/progress.csv"))).drop(
            columns=["time", "sps"], errors="ignore"
        )
        for name in ("a", "b", "m")
    }
    pd.testing.assert_frame_equal(progress["a"], progress["b"])
    assert not progress["a"].policy_loss.equals(progress["m"].policy_loss)
    meta = json.loads(next((tmp_path / "m").glob("runs/ppo/CartPole-v1/ours/*/meta.json")).read_text())
    assert meta["status"] == "complete"
