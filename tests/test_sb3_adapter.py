import pandas as pd
import pytest
from stable_baselines3 import PPO

from analysis.scores import score_of
from experiments.baselines.sb3 import ADAPTERS, make_sb3_env
from experiments.grid import execute, make_spec
from experiments.store import ResultsStore
from replications.core.config import load_paper_config, resolve
from replications.core.envs import Normalization
from replications.ppo import PPOConfig


def test_sb3_ppo_gets_the_papers_hyperparameters_not_sb3_defaults():
    cfg = resolve(load_paper_config("ppo"), PPOConfig, "Hopper-v5", {})
    kwargs, differences = ADAPTERS["ppo"].kwargs(cfg, 3), ADAPTERS["ppo"].differences_for(cfg, 3)
    env = make_sb3_env("Hopper-v5", 0, Normalization(True, True, 0.99, 10.0, 10.0))
    model = PPO("MlpPolicy", env, seed=0, device="cpu", **kwargs)
    assert (model.n_steps, model.batch_size, model.n_epochs) == (2048, 64, 10)
    assert (model.gamma, model.gae_lambda, model.ent_coef, model.max_grad_norm) == (0.99, 0.95, 0.0, 0.5)
    assert model.clip_range(1.0) == 0.2 and model.lr_schedule(1.0) == pytest.approx(3e-4)
    assert model.lr_schedule(0.5) == pytest.approx(1.5e-4)  # annealed linearly
    assert model.policy.optimizer.defaults["eps"] == 1e-5
    assert model.policy.log_std.detach().abs().sum() == 0
    sizes = [m.out_features for m in model.policy.mlp_extractor.policy_net if hasattr(m, "out_features")]
    assert sizes == [64, 64]
    assert env.clip_obs == 10.0 and env.norm_reward
    assert any("clip_range_vf" in d for d in differences)
    env.close()


def test_sb3_run_writes_the_same_contract(tmp_path):
    store = ResultsStore(tmp_path)
    spec = make_spec("ppo", "sb3", "Pendulum-v1", 0, 2048, "custom", {"horizon": 1024})
    row = execute(spec, store)
    path = store.path(spec)
    episodes = pd.read_csv(path / "episodes.csv")
    progress = pd.read_csv(path / "progress.csv")
    assert len(episodes) == 10 and (episodes.length == 200).all()  # Pendulum: 200-step time limit
    assert episodes.step.tolist() == list(range(200, 2001, 200))
    assert progress.step.tolist() == [1024, 2048] and "value_loss" in progress
    assert score_of(row, store.root) == pytest.approx(episodes["return"].mean())
