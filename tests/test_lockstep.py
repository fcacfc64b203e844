"""``rlrepro lockstep``: ours and SB3 from the same weights and randomness, compared update by update."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments.tools.lockstep import Trace, compare, lockstep
from replications.core.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"hidden_sizes": [32, 32], "batch_size": 32}  # the paper's settings otherwise
# PPO: short rollouts, and a learning rate at which few samples reach the clip boundary in 20 iterations (at
# 3e-4 a ratio eventually lands between the two's float32 roundings of 1 +- epsilon, where the clipped
# surrogate's gradient switches off: the README's lockstep table gives where the paper's settings part)
PPO_SMALL = {"horizon": 256, "minibatch_size": 64, "learning_rate": 1e-4}
# TRPO: short rollouts, and CG's damping at 1.0 (the paper's 0.1 leaves CG ill-conditioned enough that float32
# rounding grows to 1e-4 in 10-15 iterations: the README's lockstep table gives where the paper's settings part)
TRPO_SMALL = {"horizon": 256, "cg_damping": 1.0}


def _step(action: float, updates: int, terminated: bool = False) -> dict:
    row = {"action": np.array([action]), "reward": 1.0, "terminated": terminated, "truncated": False}
    return {**row, "updates": updates}


def _update(loss: float, params: float) -> dict:
    return {"critic_loss": np.array([loss]), "actor parameters": np.array([1.0, params, 0.0, 0.0, 0.0])}


def test_identical_traces_report_the_largest_difference_seen():
    a = Trace([[_step(0.5, 0), _step(0.25, 1)]], [_update(2.0, 0.1), _update(1.0, 0.2)])
    b = Trace([[_step(0.5, 0), _step(0.25 + 1e-6, 1)]], [_update(2.0, 0.1), _update(1.0 + 2e-5, 0.2)])
    r = compare(a, b, tolerance=1e-4)
    assert r.identical and r.updates == 2
    assert r.quantity == "critic_loss" and r.difference == pytest.approx(2e-5, rel=1e-3)


def test_the_first_parting_in_time_order_is_reported_with_both_values():
    """An env step after update 1 parts, and update 2's loss parts too: the step comes first (it is before
    update 2), and what agreed before it is reported with its largest difference."""
    a = Trace([[_step(0.5, 0), _step(0.3, 1), _step(0.1, 2)]], [_update(2.0, 0.1), _update(1.0, 0.2)])
    b = Trace([[_step(0.5, 0), _step(0.4, 1), _step(0.1, 2)]], [_update(2.0, 0.1), _update(1.5, 0.2)])
    r = compare(a, b, tolerance=1e-4)
    assert not r.identical and r.where == "training env step 2 (after 1 updates)" and r.quantity == "action"
    assert (float(r.ours[0]), float(r.theirs[0])) == (0.3, 0.4) and r.difference == pytest.approx(0.1)
    b.env_steps[0][1] = _step(0.3, 1)  # the step agrees: now update 2's loss is the first parting
    r = compare(a, b, tolerance=1e-4)
    assert (r.where, r.quantity, r.updates) == ("update 2", "critic_loss", 1)
    assert r.difference == pytest.approx(0.5 / 1.5)


def test_parameters_are_compared_relative_to_their_norm_and_counts_must_match():
    a = Trace([], [_update(1.0, 0.1)])
    b = Trace([], [_update(1.0, 0.1 + 5e-5)])  # 5e-5 of a norm of 1: within 1e-4
    assert compare(a, b, 1e-4).identical
    b = Trace([], [_update(1.0, 0.1), _update(1.0, 0.1)])
    r = compare(a, b, 1e-4)
    assert not r.identical and r.quantity == "number of updates" and (r.ours, r.theirs) == (1, 2)


def test_a_halved_polyak_rate_in_ours_is_found_at_the_first_update_in_the_target_step():
    """A planted difference (ours' tau halved, SB3 at the config's): located at update 1, in the target actor's
    step, though every loss, the actor's and critic's steps and all parameters still agree there."""
    r = lockstep("ddpg", "Hopper-v5", updates=5, time_limit=30, overrides=SMALL, ours_overrides={"tau": 0.0005})
    assert not r.identical and (r.where, r.updates, r.quantity) == ("update 1", 0, "actor_target step")
    assert r.difference > 0.1 and r.ours[0] < r.theirs[0]  # a smaller step (entry 0: its norm)


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ddpg", "sac"])
def test_the_aligned_pair_is_identical_for_500_updates_through_terminations_and_truncations(algo):
    """The cross-check's off-policy pairs are the same algorithm: with the adapter's documented differences
    aligned, from the same weights and randomness, every env step (training and evaluation) and every update
    (losses, temperature, each network's step and parameters, targets included) agree for 500 gradient steps
    on Hopper with a 30-step time limit, so episodes both terminate and truncate inside the window."""
    r = lockstep(algo, "Hopper-v5", updates=500, time_limit=30, overrides=SMALL)
    assert r.identical, r.line(algo, "Hopper-v5", 1e-4)
    assert r.updates == 500 and r.terminations > 0 and r.truncations > 0


def test_the_ppo_pair_is_identical_for_20_iterations_through_terminations_and_truncations():
    """PPO, ours against SB3's PPO through the adapter, with its three documented differences aligned (the
    learning-rate annealing's timing, value clipping, the final observation in the observation statistics):
    every action of 20 rollouts, and after each iteration the losses, the advantages and value targets, and
    both networks' steps and parameters agree, on Hopper with a 30-step limit (terminations and truncations)."""
    r = lockstep("ppo", "Hopper-v5", updates=20, time_limit=30, overrides=PPO_SMALL)
    assert r.identical, r.line("ppo", "Hopper-v5", 1e-4)
    assert r.updates == 20 and r.terminations > 0 and r.truncations > 0


def test_advantage_normalisation_planted_off_in_ours_is_found_in_the_first_update_policy_loss():
    """A planted difference in PPO (ours without advantage normalisation): the rollout agrees, and the pair
    parts at update 1 in the surrogate's value."""
    r = lockstep(
        "ppo",
        "Hopper-v5",
        updates=2,
        time_limit=30,
        overrides=PPO_SMALL,
        ours_overrides={"normalize_advantages": False},
    )
    assert not r.identical and (r.where, r.updates, r.quantity) == ("update 1", 0, "policy_loss")
    assert r.before[0] < 1e-6  # every action of the first rollout agreed


@pytest.mark.parametrize(
    "difference, where, quantity",
    [
        # the first episode ends at step 30 (truncated): SB3's statistics then miss the final observation
        ("final_observation_statistics", "training env step 31 (after 0 updates)", "action"),
        ("value_clipping", "update 1", "value_loss"),
        ("lr_annealing", "update 1", "policy_loss"),
    ],
)
def test_each_kept_ppo_difference_shows_where_it_acts(difference, where, quantity):
    r = lockstep("ppo", "Hopper-v5", updates=2, time_limit=30, overrides=PPO_SMALL, keep=(difference,))
    assert not r.identical and (r.where, r.quantity) == (where, quantity)


def test_the_trpo_pair_is_identical_for_20_iterations_through_terminations_and_truncations():
    """TRPO, ours against sb3-contrib's through the adapter (its KL averaged over action dimensions, scaled
    back), with Fisher subsampling off in both, SB3's KL arguments in our order and its observation statistics
    as ours: every action, and after each iteration the surrogate gain, the accepted step's KL, the value
    loss, advantages, value targets and both networks' steps and parameters agree for 20 iterations. This is
    the check that found pi_old's log-std moving with the line search's trial steps (tests/test_natural_gradient)."""
    r = lockstep("trpo", "Hopper-v5", updates=20, time_limit=30, overrides=TRPO_SMALL)
    assert r.identical, r.line("trpo", "Hopper-v5", 1e-4)
    assert r.updates == 20 and r.terminations > 0 and r.truncations > 0


@pytest.mark.parametrize(
    "keep, ours, where, quantity",
    [
        ((), {"max_kl": 0.005}, "update 1", "surrogate_gain"),  # planted: ours' trust region halved
        (("kl_direction",), {}, "update 1", "kl"),
        (("fisher_subsample",), {}, "update 1", "surrogate_gain"),
        (("final_observation_statistics",), {}, "training env step 31 (after 0 updates)", "action"),
    ],
)
def test_a_planted_or_kept_trpo_difference_is_found_where_it_acts(keep, ours, where, quantity):
    r = lockstep("trpo", "Hopper-v5", updates=2, time_limit=30, overrides=TRPO_SMALL, keep=keep, ours_overrides=ours)
    assert not r.identical and (r.where, r.quantity) == (where, quantity)


def test_keeping_a_documented_difference_shows_its_effect_on_its_own():
    """DDPG with the warm-up kept (SB3 adds its exploration noise to the uniform warm-up actions, ours does
    not): the pair parts at the very first action, before any update."""
    r = lockstep("ddpg", "Hopper-v5", updates=1, time_limit=30, overrides=SMALL, keep=("warmup_noise",))
    assert not r.identical and (r.where, r.quantity) == ("training env step 1 (after 0 updates)", "action")


def test_an_architectural_difference_kept_is_refused_in_one_line():
    with pytest.raises(UserError, match="cannot start from the same weights"):
        lockstep("ddpg", "Hopper-v5", updates=1, overrides=SMALL, keep=("action_layer",))


@pytest.mark.parametrize(
    "args, message",
    [
        (["npg", "Hopper-v5"], "lockstep has no trace for 'npg'; allowed: sac, ppo, trpo, ddpg"),
        (["sac", "Hopper-v5", "--keep", "tau"], "--keep tau: not a documented difference of sac; allowed"),
        (["sac", "Pong-v5"], "unknown env 'Pong-v5'"),
        (["sac", "Hopper-v5", "--updates", "0"], "--updates: must be a positive integer"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(monkeypatch, capsys, args, message):
    from experiments.cli import main  # in this process: a subprocess would pay the imports for each case

    monkeypatch.chdir(ROOT)
    assert main(["lockstep", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_the_command_records_its_result_and_the_reports_read_it(tmp_path):
    """`rlrepro lockstep` keeps its result with the settings and provenance under <results>/lockstep/; the
    reports of the algorithm list it (a damaged record is a one-line error naming it)."""
    from experiments.reporting.write import lockstep_lines

    args = ["ddpg", "Hopper-v5", "--updates", "2", "--time-limit", "30", "--results", str(tmp_path)]
    args += ["--set", "hidden_sizes=[32,32]", "--set", "batch_size=32"]
    out = subprocess.run(
        [sys.executable, "-m", "experiments.cli", "lockstep", *args], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    (path,) = (tmp_path / "lockstep").glob("ddpg-Hopper-v5*.json")
    (line,) = lockstep_lines(tmp_path, "ddpg")
    assert line.startswith("ddpg Hopper-v5: identical for 2 updates") and "commit " in line
    assert "--set batch_size=32" in line and "time limit 30" in line and "2 of 2 updates compared" in line
    assert lockstep_lines(tmp_path, "sac") == []
    path.write_text("{")
    with pytest.raises(UserError, match="lockstep record .* is not readable"):
        lockstep_lines(tmp_path, "ddpg")
