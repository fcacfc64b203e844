"""Seed-parallel training: seed i of a batched K-seed run is the single run of seed i (up to float rounding)."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from experiments.runner import execute, execute_group, make_spec, work_items
from experiments.store import ResultsStore
from replications.core.seed_parallel import clip_grad_norm_per_seed_, gather_seeds

STATS = {
    "ppo": ["policy_loss", "value_loss", "entropy", "approx_kl"],
}


def test_gather_seeds_takes_each_seeds_own_rows():
    data = {"x": torch.arange(2 * 5 * 3).reshape(2, 5, 3)}
    idx = torch.tensor([[4, 0], [1, 1]])
    got = gather_seeds(data, idx)["x"]
    assert torch.equal(got[0], data["x"][0, [4, 0]]) and torch.equal(got[1], data["x"][1, [1, 1]])


def test_per_seed_gradient_clipping_equals_clipping_each_seed_alone():
    torch.manual_seed(0)
    grads = [torch.randn(3, 4, 5), torch.randn(3, 5)]
    grads[0][1] *= 1e-3  # seed 1's norm is below the threshold: left unscaled
    grads[1][1] *= 1e-3
    stacked = [nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(stacked, grads, strict=True):
        p.grad = g.clone()
    clip_grad_norm_per_seed_(stacked, 0.5)
    for k in range(3):
        alone = [nn.Parameter(torch.zeros_like(g[k])) for g in grads]
        for p, g in zip(alone, grads, strict=True):
            p.grad = g[k].clone()
        nn.utils.clip_grad_norm_(alone, 0.5)
        for p, q in zip(stacked, alone, strict=True):
            torch.testing.assert_close(p.grad[k], q.grad, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(stacked[0].grad[1], grads[0][1])


@pytest.mark.slow
@pytest.mark.parametrize("algo,env", [("ppo", "Pendulum-v1"), ("ppo", "CartPole-v1")])
def test_seed_i_of_a_batched_run_matches_the_single_run_of_seed_i(tmp_path, algo, env):
    overrides = {"horizon": 512}
    specs = [make_spec(algo, "ours", env, seed, 2048, "custom", overrides) for seed in (0, 1, 2)]
    batched = ResultsStore(tmp_path / "batched")
    rows = execute_group(specs, batched)
    assert [r["seed"] for r in rows] == [0, 1, 2]
    single = ResultsStore(tmp_path / "single")
    for spec in specs:
        execute(spec, single)
        a, b = batched.path(spec), single.path(spec)
        pa, pb = pd.read_csv(a / "progress.csv"), pd.read_csv(b / "progress.csv")
        assert list(pa.step) == list(pb.step) == [512, 1024, 1536, 2048]
        # over the first iterations the trajectories are the same and the statistics agree to float rounding
        np.testing.assert_allclose(pa[STATS[algo]].to_numpy(), pb[STATS[algo]].to_numpy(), rtol=2e-3, atol=1e-5)
        ea, eb = pd.read_csv(a / "episodes.csv"), pd.read_csv(b / "episodes.csv")
        assert list(ea.length) == list(eb.length)
        np.testing.assert_allclose(ea["return"], eb["return"], rtol=1e-4, atol=1e-3)
        ma, mb = (torch.load(p / "model.pt", weights_only=False) for p in (a, b))
        for name in ("policy", "value"):
            for key in mb[name]:
                torch.testing.assert_close(ma[name][key], mb[name][key], rtol=1e-4, atol=1e-5)
    # the seeds really differ from one another (the batch is not K copies of one seed)
    returns = [pd.read_csv(batched.path(s) / "episodes.csv")["return"].iloc[0] for s in specs]
    assert len(set(returns)) == 3


def test_work_items_group_only_our_seeds_of_one_config():
    specs = [make_spec("ppo", impl, "CartPole-v1", s, 1024, "custom", {}) for impl in ("ours", "sb3") for s in range(5)]
    items = work_items(specs, 2)
    assert sorted(len(i) for i in items) == [1, 1, 1, 1, 1, 1, 2, 2]
    assert all(len({s.config_id for s in i}) == 1 and i[0].impl == "ours" for i in items if len(i) > 1)
    assert len(work_items(specs, 1)) == 10
