"""The algorithms the suite knows: name -> config dataclass and one train function per implementation.

A train function has the signature ``train(env_id, cfg, seed, total_steps, logger) -> facts`` and writes
episodes and progress through ``logger`` (the run contract); ``facts`` holds at least ``steps``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from experiments.baselines import sb3 as sb3_adapters
from replications import awr, ddpg, npg, ppo, qprop, sac, trpo
from replications.core.errors import UserError

TrainFn = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class AlgoEntry:
    name: str
    config_cls: type
    impls: dict[str, TrainFn]
    impl_settings: dict[str, Callable[[Any, str], dict[str, Any]]]
    """impl -> (config, env id) -> the library-specific settings derived from our config for that env (part of
    the run's identity)."""
    seed_parallel: Callable[..., list[dict[str, Any]]] | None = None
    """``train(env_id, cfg, seeds, total_steps, loggers) -> [facts]``: several seeds of ours, batched."""


ALGOS: dict[str, AlgoEntry] = {
    "ppo": AlgoEntry(
        "ppo",
        ppo.PPOConfig,
        {"ours": ppo.train, "sb3": sb3_adapters.train_ppo},
        {"sb3": sb3_adapters.ppo_settings},
        ppo.train_seed_parallel,
    ),
    "trpo": AlgoEntry(
        "trpo",
        trpo.TRPOConfig,
        {"ours": trpo.train, "sb3": sb3_adapters.train_trpo},
        {"sb3": sb3_adapters.trpo_settings},
        trpo.train_seed_parallel,
    ),
    "npg": AlgoEntry("npg", npg.NPGConfig, {"ours": npg.train}, {}, npg.train_seed_parallel),  # no SB3 counterpart
    **{  # SAC v2 (automatic temperature) and v1 (fixed temperature, V network): one module, two configs
        name: AlgoEntry(
            name, sac.SACConfig, {"ours": sac.train, "sb3": sb3_adapters.train_sac}, {"sb3": sb3_adapters.sac_settings}
        )
        for name in ("sac", "sac-v1")
    },
    "awr": AlgoEntry("awr", awr.AWRConfig, {"ours": awr.train}, {}),  # no SB3 counterpart
    "qprop": AlgoEntry("qprop", qprop.QPropConfig, {"ours": qprop.train}, {}),  # no SB3 counterpart
    "qprop-aggressive": AlgoEntry("qprop-aggressive", qprop.QPropConfig, {"ours": qprop.train}, {}),
    "ddpg": AlgoEntry(
        "ddpg",
        ddpg.DDPGConfig,
        {"ours": ddpg.train, "sb3": sb3_adapters.train_ddpg},
        {"sb3": sb3_adapters.ddpg_settings},
    ),
}
IMPLS = ("ours", "sb3")


def get_algo(name: str) -> AlgoEntry:
    if name not in ALGOS:
        raise UserError(f"unknown algorithm '{name}'; allowed: {', '.join(ALGOS)}")
    return ALGOS[name]


def check_impls(entry: AlgoEntry, impls: list[str]) -> list[str]:
    for impl in impls:
        if impl not in entry.impls:
            raise UserError(f"unknown impl '{impl}' for {entry.name}; allowed: {', '.join(entry.impls)}")
    return impls
