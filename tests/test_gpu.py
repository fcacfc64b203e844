"""The off-policy update on a GPU: no host synchronisation per step, and the CUDA-graph flag
(core/cuda_graph.py). The snapshot/restore that undoes the capture's warm-up runs on the CPU; the rest needs
a CUDA device and is skipped without one (CI has none; the GPU machine runs them: README, "GPU")."""

import os
import subprocess

import numpy as np
import pytest
import torch

from replications import ddpg, sac
from replications.core.checkpoint import capture
from replications.core.config import build_config, load_paper_config
from replications.core.cuda_graph import cuda_graphed, restore_in_place
from replications.core.replay import ReplayBuffer

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _update(algo: str, device: str = "cpu", obs_dim: int = 5, act_dim: int = 2, hidden=(32, 32)):  # noqa: ANN001
    torch.manual_seed(0)
    if algo == "ddpg":
        cfg = build_config(ddpg.DDPGConfig, load_paper_config("ddpg").values, "ddpg")
        actor = ddpg.Actor(obs_dim, act_dim, hidden, cfg.final_layer_init).to(device)
        critic = ddpg.Critic(obs_dim, act_dim, hidden, cfg.final_layer_init).to(device)
        return ddpg.make_update(cfg, actor, critic)
    cfg = build_config(sac.SACConfig, load_paper_config(algo).values, algo)
    actor = sac.SquashedGaussianActor(obs_dim, act_dim, hidden).to(device)
    q1, q2 = (sac.q_network(obs_dim, act_dim, hidden).to(device) for _ in range(2))
    v = sac.v_network(obs_dim, hidden).to(device) if cfg.value_network else None
    return sac.make_update(cfg, actor, q1, q2, act_dim, v)


def _buffer(device: str, obs_dim: int = 5, act_dim: int = 2, n: int = 500) -> ReplayBuffer:
    rng = np.random.default_rng(0)
    buf = ReplayBuffer(n, obs_dim, act_dim, device)
    for _ in range(n):
        obs, nxt = rng.normal(size=obs_dim), rng.normal(size=obs_dim)
        buf.add(obs, rng.uniform(-1, 1, act_dim), float(rng.normal()), nxt, bool(rng.random() < 0.05), False)
    return buf


def _tensors(state: dict) -> dict[str, torch.Tensor]:
    """Every parameter and optimiser-state tensor of an update's state, by name (for comparisons)."""
    out = {}
    for name, obj in state.items():
        if isinstance(obj, torch.nn.Module):
            out.update({f"{name}.{k}": v.detach().cpu().clone() for k, v in obj.state_dict().items()})
        elif isinstance(obj, torch.Tensor):
            out[name] = obj.detach().cpu().clone()
        elif isinstance(obj, torch.optim.Optimizer):
            for i, s in obj.state_dict()["state"].items():
                out.update({f"{name}.{i}.{k}": torch.as_tensor(v).cpu().clone() for k, v in s.items()})
    return out


def _param_ids(state: dict) -> dict[str, list[int]]:
    return {name: [t.data_ptr() for t in obj.parameters()] for name, obj in state.items() if hasattr(obj, "parameters")}


@pytest.mark.parametrize("algo", ["ddpg", "sac", "sac-v1"])
def test_restore_in_place_undoes_updates_and_keeps_the_tensors(algo):
    """What the capture's warm-up relies on: after checkpoint.capture, 3 updates and restore_in_place, the state holds
    the old values in the same tensor objects, and the next update equals a fresh update's (Adam's state
    created by the warm-up is zeroed: a first Adam step again)."""
    update, fresh = _update(algo), _update(algo)
    batch = _buffer("cpu").sample(64, np.random.default_rng(1))
    before = _tensors(update.state)
    ids = _param_ids(update.state)
    saved = capture(update.state)
    for _ in range(3):
        update(batch)
    assert not all(torch.equal(v, _tensors(update.state)[k]) for k, v in before.items())  # they did move
    restore_in_place(update.state, saved)
    after = _tensors(update.state)
    for key, value in before.items():
        assert torch.equal(after[key], value), key
    assert ids == _param_ids(update.state)  # the same tensors: a captured graph's addresses stay valid
    torch.manual_seed(5)
    update(batch)
    torch.manual_seed(5)
    fresh(batch)
    got, want = _tensors(update.state), _tensors(fresh.state)
    assert got.keys() == want.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=0, msg=key)


@cuda
@pytest.mark.parametrize("algo", ["ddpg", "sac", "sac-v1"])
def test_update_needs_no_host_synchronisation(algo):
    """Sampling a minibatch and the whole update run without the host waiting for the GPU
    (torch.cuda.set_sync_debug_mode('error') raises at any synchronising call)."""
    update, buf, rng = _update(algo, "cuda"), _buffer("cuda"), np.random.default_rng(0)
    update(buf.sample(64, rng))  # first call: lazy CUDA/cuBLAS initialisation may synchronise
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(5):
            stats = update(buf.sample(64, rng))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in stats.values())


@cuda
def test_cuda_graph_replays_the_ddpg_update():
    """DDPG's update has no randomness: replayed as a CUDA graph it gives the eager update's numbers
    (to float rounding: capturable Adam computes its bias correction on the device)."""
    eager, graphed_base = _update("ddpg", "cuda"), _update("ddpg", "cuda")
    graphed = cuda_graphed(graphed_base)
    buf = _buffer("cuda")
    for i in range(20):
        batch = buf.sample(64, np.random.default_rng(i))
        want, got = eager(batch), graphed(batch)
        torch.testing.assert_close(got["critic_loss"], want["critic_loss"], rtol=1e-4, atol=1e-5)
    a, b = _tensors(eager.state), _tensors(graphed_base.state)
    for key in a:
        if key.endswith(".step"):
            assert float(a[key]) == float(b[key]) == 20.0, key  # the warm-up steps were undone
        else:
            torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5, msg=key)


@cuda
@pytest.mark.parametrize("algo", ["sac", "sac-v1"])
def test_cuda_graph_sac_update_learns_a_fixed_regression(algo):
    """SAC's update draws noise, so graph and eager differ in their random streams; replayed, it still
    moves the networks, keeps the step count (warm-up undone) and the losses finite and falling on a
    fixed minibatch."""
    base = _update(algo, "cuda")
    graphed = cuda_graphed(base)
    batch = _buffer("cuda").sample(128, np.random.default_rng(0))
    losses = [float(graphed(batch)["critic_loss"]) for _ in range(200)]
    assert np.isfinite(losses).all()
    assert np.mean(losses[-20:]) < np.mean(losses[:20])
    steps = {k: float(v) for k, v in _tensors(base.state).items() if k.endswith(".step")}
    assert steps and all(s == 200.0 for k, s in steps.items() if not k.startswith("alpha_opt")), steps


@cuda
@pytest.mark.parametrize("graph", [False, True])
def test_sac_trains_on_the_gpu_end_to_end(tmp_path, graph, rlrepro_cmd):
    env = {**os.environ, "RLREPRO_DEVICE": "cuda", "RLREPRO_CUDA_GRAPH": "1" if graph else "0"}
    out = subprocess.run(
        [*rlrepro_cmd, "train", "sac", "Pendulum-v1", "--steps", "1500", "--out", str(tmp_path),
         "--set", "warmup_steps=500", "--set", "eval_every=1500", "--set", "eval_episodes=1"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert list(tmp_path.rglob("evaluations.csv")), "no evaluation written"


def test_cuda_requested_without_a_gpu_is_a_clear_error(tmp_path, rlrepro_cmd):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    env = {**os.environ, "RLREPRO_DEVICE": "cuda"}
    out = subprocess.run(
        [*rlrepro_cmd, "train", "sac", "Pendulum-v1", "--steps", "300", "--out", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode != 0
    assert "RLREPRO_DEVICE=cuda" in out.stderr and "allowed: cpu" in out.stderr
    assert "Traceback" not in out.stderr


def test_bench_cuda_graph_needs_cuda(rlrepro_cmd):
    out = subprocess.run([*rlrepro_cmd, "bench", "sac", "--cuda-graph"], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "--cuda-graph needs --device cuda" in out.stderr
