import dataclasses
from pathlib import Path

import pytest
import yaml

from experiments.grid import make_spec
from experiments.registry import ALGOS
from replications.core.config import CONFIG_DIR, build_config, load_paper_config, parse_overrides, resolve
from replications.core.errors import UserError
from replications.ppo import PPOConfig


@pytest.mark.parametrize("algo", list(ALGOS))
def test_every_hyperparameter_is_in_the_yaml_with_a_source(algo):
    paper = load_paper_config(algo)
    fields = {f.name for f in dataclasses.fields(ALGOS[algo].config_cls)}
    assert set(paper.values) == fields
    assert all(len(src) > 5 for src in paper.sources.values())
    assert paper.deviations and paper.paper and paper.scoring["source"]


def test_ppo_values_are_the_papers_table_3():
    cfg = resolve(load_paper_config("ppo"), PPOConfig, "Hopper-v5", {})
    assert (cfg.horizon, cfg.learning_rate, cfg.epochs, cfg.minibatch_size) == (2048, 3e-4, 10, 64)
    assert (cfg.gamma, cfg.gae_lambda, cfg.clip_range, cfg.hidden_sizes) == (0.99, 0.95, 0.2, (64, 64))
    assert cfg.entropy_coef == 0.0 and cfg.activation == "tanh"


def test_overrides_are_parsed_as_json_and_validated():
    o = parse_overrides(["learning_rate=1e-3", "hidden_sizes=[32,32]", "activation=relu", "clip_value_loss=false"])
    assert o == {
        "learning_rate": 1e-3,
        "hidden_sizes": [32, 32],
        "activation": "relu",
        "clip_value_loss": False,
    }
    cfg = resolve(load_paper_config("ppo"), PPOConfig, "CartPole-v1", o)
    assert cfg.hidden_sizes == (32, 32) and cfg.learning_rate == 1e-3


@pytest.mark.parametrize(
    "override, message",
    [
        ({"lr": 1.0}, "unknown ppo hyperparameter 'lr'; allowed: horizon"),
        ({"horizon": "big"}, "ppo hyperparameter 'horizon' = 'big': expected int"),
        ({"horizon": 2048.5}, "ppo hyperparameter 'horizon' = 2048.5: expected int"),
        ({"activation": "sigmoid"}, "ppo hyperparameter 'activation' = 'sigmoid'"),
        ({"clip_value_loss": "yes"}, "ppo hyperparameter 'clip_value_loss' = 'yes': expected bool"),
    ],
)
def test_bad_hyperparameters_are_one_line_errors(override, message):
    with pytest.raises(UserError) as err:
        resolve(load_paper_config("ppo"), PPOConfig, "CartPole-v1", override)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_hyperparameter_is_an_error():
    values = dict(load_paper_config("ppo").values)
    values.pop("gamma")
    with pytest.raises(UserError, match="missing hyperparameters \\['gamma'\\]"):
        build_config(PPOConfig, values, "ppo")


def test_unknown_config_file_keys_are_errors(tmp_path):
    raw = yaml.safe_load((CONFIG_DIR / "ppo.yaml").read_text())
    raw["hyperparmeters"] = {}
    path = tmp_path / "ppo.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(UserError, match="unknown keys \\['hyperparmeters'\\]"):
        load_paper_config("ppo", path)


@pytest.mark.parametrize(
    "block, value, message",
    [
        ("reference", {"algo": "ppo", "sources_startswith": "x"}, r"unknown reference keys \['sources_startswith'\]; "),
        ("verdict", {"equivalence_margin": {"value": 1.5, "source": "x"}}, r"equivalence_margin = 1.5: must be a "),
        ("verdict", {"equivalence_margin": {"value": "10%", "source": "x"}}, r"equivalence_margin = '10%': must be"),
        ("verdict", {"margin": {"value": 0.1, "source": "x"}}, r"verdict must be \{equivalence_margin"),
        ("verdict", {"equivalence_margin": 0.1}, r"verdict: 'equivalence_margin' must be \{value: ..., source: ...\}"),
        ("diagnostics", ["eta_mean"], r"diagnostics must map progress.csv columns to what they measure"),
        ("diagnostics", {"eta_mean": 1}, r"diagnostics must map progress.csv columns to what they measure"),
    ],
)
def test_reference_and_verdict_blocks_are_validated(tmp_path, block, value, message):
    """An unknown key in a config's reference block, or a margin that is not a fraction in (0, 1) with a
    source, is one clear line; every committed config declares its margin with a source."""
    raw = yaml.safe_load((CONFIG_DIR / "ppo.yaml").read_text())
    raw[block] = value
    path = tmp_path / "ppo.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(UserError, match=message):
        load_paper_config("ppo", path)
    for algo in ("ppo", "trpo", "npg", "sac", "sac-v1", "ddpg", "awr", "qprop", "qprop-aggressive"):
        paper = load_paper_config(algo)
        assert paper.margin == 0.10 and paper.margin_source.startswith("[ours]"), algo


def test_run_identity_changes_with_config_and_seed_only():
    a = make_spec("ppo", "ours", "CartPole-v1", 0, 2048, "quick", {})
    assert a.run_id == make_spec("ppo", "ours", "CartPole-v1", 0, 2048, "custom", {}).run_id
    assert a.run_id != make_spec("ppo", "ours", "CartPole-v1", 1, 2048, "quick", {}).run_id
    assert a.config_id == make_spec("ppo", "ours", "CartPole-v1", 1, 2048, "quick", {}).config_id
    assert a.config_id != make_spec("ppo", "ours", "CartPole-v1", 0, 2048, "quick", {"gamma": 0.9}).config_id
    assert a.config_id != make_spec("ppo", "sb3", "CartPole-v1", 0, 2048, "quick", {}).config_id
    assert a.config_id != make_spec("ppo", "ours", "CartPole-v1", 0, 4096, "quick", {}).config_id


@pytest.mark.parametrize(
    ("algo", "ablation", "message"),
    [
        ("sac", {"log_prob_epsilon": 1e-6}, "log_prob_epsilon = 1e-06 is an ablation of our SAC"),
        ("ddpg", {"action_layer": 1}, "action_layer = 1 is an ablation of our DDPG"),
    ],
)
def test_a_late_hyperparameter_keeps_stored_run_ids_and_a_changed_value_makes_a_new_run(algo, ablation, message):
    """SAC's ``log_prob_epsilon`` and DDPG's ``action_layer`` came after their runs were stored: at the default
    the committed runs keep their ids (the store still finds them); set, the run is a new one; SB3 cannot."""
    import pandas as pd

    (name,) = ablation
    index = pd.read_csv(Path(__file__).resolve().parent.parent / "results" / "index.csv")
    stored = index[(index.algo == algo) & (index.budget == "crosscheck") & (index.env == "Hopper-v5")]
    default = {}
    for impl in ("ours", "sb3"):
        default[impl] = make_spec(algo, impl, "Hopper-v5", 0, 200_000, "crosscheck", {})
        assert default[impl].run_id in set(stored[stored.impl == impl].run_id), impl
        assert name not in default[impl].hyperparameters
    changed = make_spec(algo, "ours", "Hopper-v5", 0, 200_000, "crosscheck", ablation)
    assert changed.hyperparameters[name] == ablation[name] and changed.config_id != default["ours"].config_id
    with pytest.raises(UserError, match=message):
        make_spec(algo, "sb3", "Hopper-v5", 0, 200_000, "crosscheck", ablation)
    with pytest.raises(UserError, match=f"'{name}' = 'x': expected"):
        make_spec(algo, "ours", "Hopper-v5", 0, 200_000, "crosscheck", {name: "x"})


@pytest.mark.parametrize(
    ("algo", "override", "message"),
    [
        ("ppo", {"minibatch_size": -64}, "ppo hyperparameter 'minibatch_size' = -64: must be an integer >= 1"),
        ("ppo", {"horizon": 0}, "'horizon' = 0: must be an integer >= 1"),
        ("ppo", {"hidden_sizes": [64, 0]}, "'hidden_sizes' = (64, 0): must be integers, each >= 1"),
        ("ppo", {"learning_rate": float("nan")}, "'learning_rate' = nan: must be a finite number > 0"),
        ("ppo", {"learning_rate": float("inf")}, "'learning_rate' = inf: must be a finite number > 0"),
        ("ppo", {"learning_rate": float("-inf")}, "'learning_rate' = -inf: must be a finite number > 0"),
        ("ppo", {"learning_rate": 0.0}, "'learning_rate' = 0.0: must be a finite number > 0"),
        ("ppo", {"init_log_std": float("nan")}, "'init_log_std' = nan: must be a finite number"),
        ("ppo", {"gamma": 1.5}, "'gamma' = 1.5: must be a finite number in [0, 1]"),
        ("ppo", {"gae_lambda": -0.1}, "'gae_lambda' = -0.1: must be a finite number in [0, 1]"),
        ("trpo", {"value_learning_rate": -1e-3}, "'value_learning_rate' = -0.001: must be a finite number > 0"),
        ("trpo", {"value_epochs": 0}, "'value_epochs' = 0: must be an integer >= 1"),
        ("sac", {"batch_size": 0}, "sac hyperparameter 'batch_size' = 0: must be an integer >= 1"),
        ("sac", {"tau": float("inf")}, "'tau' = inf: must be a finite number in [0, 1]"),
        ("ddpg", {"warmup_steps": -1}, "'warmup_steps' = -1: must be an integer >= 0"),
        ("ddpg", {"action_layer": 3}, "'action_layer' = 3: must be an integer in [1, 2]"),
        ("awr", {"actor_learning_rate": float("nan")}, "'actor_learning_rate' = nan: must be a finite number > 0"),
        ("qprop", {"qf_batch_size": -64}, "'qf_batch_size' = -64: must be an integer >= 1"),
    ],
)
def test_numbers_out_of_range_are_one_line_errors(algo, override, message):
    """No hyperparameter may be NaN or infinite; counts and sizes are positive; rates, discounts and the like
    in their obvious ranges: for overrides and config files alike (both go through ``resolve``)."""
    with pytest.raises(UserError) as err:
        resolve(load_paper_config(algo), ALGOS[algo].config_cls, "Pendulum-v1", override)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_config_file_value_out_of_range_is_an_error(tmp_path):
    raw = yaml.safe_load((CONFIG_DIR / "ppo.yaml").read_text())
    raw["env_overrides"] = {"CartPole-v1": {"gamma": {"value": 1.01, "source": "a typo"}}}
    path = tmp_path / "ppo.yaml"
    path.write_text(yaml.safe_dump(raw))
    resolve(load_paper_config("ppo", path), PPOConfig, "Pendulum-v1", {})  # other envs are unaffected
    with pytest.raises(UserError, match=r"'gamma' = 1.01: must be a finite number in \[0, 1\]"):
        resolve(load_paper_config("ppo", path), PPOConfig, "CartPole-v1", {})


@pytest.mark.parametrize("algo", list(ALGOS))
def test_every_committed_config_resolves_for_every_env_and_budget_it_plans(algo):
    """The range checks and the one-iteration minimum refuse nothing the committed configs use: every budget's
    grid (and the runs its report compares with) plans, and so does every report written with --set."""
    import json

    from experiments.grid import build_comparison, plan_grid

    paper = load_paper_config(algo)
    for budget in paper.budgets:
        specs = plan_grid(algo, budget)
        assert specs
        comparison = build_comparison(algo, budget, specs)
        assert all(group.specs for group in comparison.comparators)
    reports = Path(__file__).resolve().parent.parent / "reports"
    for grid in (json.loads(p.read_text()) for p in sorted(reports.glob(f"{algo}-*/grid.json"))):
        if grid["algo"] == algo and (grid["steps"] or grid["overrides"]):
            keys = ("seeds", "envs", "impls", "overrides", "steps")
            assert plan_grid(algo, grid["budget"], **{k: grid[k] for k in keys})
