"""The one place that seeds global RNGs. Everything else takes an explicit ``torch.Generator`` or seeds
its env with ``reset(seed=...)``."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int, threads: int = 1) -> torch.Generator:
    """Seed Python, NumPy and torch, make torch deterministic on CPU, and return a generator for sampling.

    One torch thread per run: runs are parallelised across processes, not inside them.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
