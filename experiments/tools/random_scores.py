"""Random-policy scores per env (the 0 of normalised scores, as the PPO paper's Table 1 normalisation):
the mean raw return of 10 episodes of uniformly random actions, seeded. Written to
``analysis/data/random_scores.csv`` by ``python -m experiments.tools.random_scores``."""

from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd

from replications.core.envs import SUPPORTED_ENVS

OUT = Path(__file__).resolve().parents[2] / "analysis" / "data" / "random_scores.csv"
EPISODES, SEED = 10, 0


def random_score(env_id: str) -> float:
    env = gym.make(env_id)
    env.action_space.seed(SEED)
    returns = []
    for episode in range(EPISODES):
        env.reset(seed=SEED + episode)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    env.close()
    return float(np.mean(returns))


def main() -> int:
    rows = [
        {"env": env_id, "random_score": random_score(env_id), "episodes": EPISODES, "seed": SEED}
        for env_id in SUPPORTED_ENVS
        if "Humanoid" not in env_id
    ]
    pd.DataFrame(rows).to_csv(OUT, index=False)
    print(f"wrote {OUT} ({len(rows)} envs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
