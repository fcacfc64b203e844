"""The algorithms the suite knows: name -> config dataclass and one train function per implementation.

A train function has the signature ``train(env_id, cfg, seed, total_steps, logger) -> facts`` and writes
episodes and progress through ``logger`` (the run contract); ``facts`` holds at least ``steps``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from experiments.baselines.sb3 import ADAPTERS as SB3
from replications import awr, ddpg, npg, ppo, qprop, sac, trpo
from replications.core.errors import UserError
from replications.core.onpolicy import MakeUpdate, train_on_policy_seeds

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
    """``train(env_id, cfg, seeds, total_steps, loggers) -> [facts]``: several seeds of ours, batched (the
    algorithms whose update is written against core/seeds.py's SeedNets, trained by the same update)."""


def seed_parallel(make_update: MakeUpdate) -> Callable[..., list[dict[str, Any]]]:
    return partial(train_on_policy_seeds, make_update=make_update)


ALGOS: dict[str, AlgoEntry] = {
    "ppo": AlgoEntry(
        "ppo",
        ppo.PPOConfig,
        {"ours": ppo.train, "sb3": SB3["ppo"].train},
        {"sb3": SB3["ppo"].describe},
        seed_parallel(ppo.make_update),
    ),
    "trpo": AlgoEntry(
        "trpo",
        trpo.TRPOConfig,
        {"ours": trpo.train, "sb3": SB3["trpo"].train},
        {"sb3": SB3["trpo"].describe},
        seed_parallel(trpo.make_update),
    ),
    # NPG: no SB3 counterpart
    "npg": AlgoEntry("npg", npg.NPGConfig, {"ours": npg.train}, {}, seed_parallel(npg.make_update)),
    **{  # SAC v2 (automatic temperature) and v1 (fixed temperature, V network): one module, two configs
        name: AlgoEntry(name, sac.SACConfig, {"ours": sac.train, "sb3": SB3["sac"].train}, {"sb3": SB3["sac"].describe})
        for name in ("sac", "sac-v1")
    },
    "awr": AlgoEntry("awr", awr.AWRConfig, {"ours": awr.train}, {}),  # no SB3 counterpart
    "qprop": AlgoEntry("qprop", qprop.QPropConfig, {"ours": qprop.train}, {}),  # no SB3 counterpart
    "qprop-aggressive": AlgoEntry("qprop-aggressive", qprop.QPropConfig, {"ours": qprop.train}, {}),
    "ddpg": AlgoEntry(
        "ddpg",
        ddpg.DDPGConfig,
        {"ours": ddpg.train, "sb3": SB3["ddpg"].train},
        {"sb3": SB3["ddpg"].describe},
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
