"""Plan a replication grid: the run specs of an algorithm's budget (its envs, seeds and steps, from the paper
config), each a validated ``RunSpec`` whose run id the store files it under."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.registry import check_impls, get_algo
from experiments.store import RunSpec
from replications.core.config import identity, load_paper_config, resolve
from replications.core.envs import check_env_id
from replications.core.errors import UserError


def make_spec(algo: str, impl: str, env: str, seed: int, steps: int, budget: str, overrides: dict[str, Any]) -> RunSpec:
    entry = get_algo(algo)
    check_impls(entry, [impl])
    check_env_id(env)
    if seed < 0:
        raise UserError(f"--seed must be a non-negative integer, got {seed}")
    if steps <= 0:
        raise UserError(f"--steps must be a positive integer, got {steps}")
    cfg = resolve(load_paper_config(algo), entry.config_cls, env, overrides)
    _check_one_iteration(algo, env, cfg, steps)
    if hasattr(cfg, "normalization"):  # an on-policy config composes its normalisation from its own values
        cfg.normalization().check(algo)
    settings = entry.impl_settings[impl](cfg, env) if impl in entry.impl_settings else {}
    return RunSpec(algo, impl, env, seed, steps, budget, identity(cfg), settings)


def _check_one_iteration(algo: str, env: str, cfg: Any, steps: int) -> None:
    """An on-policy algorithm trains whole iterations of ``cfg.horizon`` env steps (ceil(steps / horizon) of
    them, as SB3 does): a budget below one iteration would train a whole one, more than was asked for."""
    horizon = getattr(cfg, "horizon", 1)
    if steps < horizon:
        raise UserError(
            f"--steps {steps} is less than one iteration of {algo} (horizon {horizon} on {env}); use at least {horizon}"
        )


def plan_grid(
    algo: str,
    budget: str,
    *,
    seeds: int | None = None,
    envs: list[str] | None = None,
    impls: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
    steps: int | None = None,
) -> list[RunSpec]:
    """The paper's grid for ``budget`` (envs x impls x seeds), optionally narrowed or re-budgeted."""
    entry = get_algo(algo)
    plan = load_paper_config(algo).budget(budget)
    impls = check_impls(entry, impls or list(entry.impls))
    for env in envs or []:
        check_env_id(env)
        if env not in plan.steps and steps is None:
            raise UserError(
                f"env '{env}' is not in the {algo} '{budget}' grid and no --steps was given; "
                f"grid envs: {', '.join(plan.steps)}"
            )
    env_steps = {env: steps or plan.steps.get(env, 0) for env in (envs or plan.steps)}
    n_seeds = seeds if seeds is not None else plan.seeds
    if n_seeds <= 0:
        raise UserError(f"--seeds must be a positive integer, got {n_seeds}")
    specs = [
        make_spec(algo, impl, env, seed, env_steps[env], budget, overrides or {})
        for env in env_steps
        for impl in impls
        for seed in range(n_seeds)
    ]
    planned = {s.run_id for s in specs}
    if "sb3" in impls:  # the cross-check also at equal settings (not for ours alone, e.g. make regress)
        specs += [s for s in sb3_settings_specs(algo, budget, specs, overrides) if s.run_id not in planned]
    return specs


def sb3_settings_specs(
    algo: str, budget: str, specs: list[RunSpec], overrides: dict[str, Any] | None = None
) -> list[RunSpec]:
    """Our runs of ``specs`` again with the config's ``reference.sb3_settings`` overrides: the settings SB3
    runs where our paper config asks for something SB3 cannot do (TRPO: Fisher-vector products on every
    5th sample; sb3-contrib uses the whole batch). The SB3 cross-check is then also made at equal settings."""
    matched = load_paper_config(algo).reference.get("sb3_settings")
    if not matched:
        return []
    extra = {**(overrides or {}), **matched["overrides"]}
    return [make_spec(algo, "ours", s.env, s.seed, s.steps, budget, extra) for s in specs if s.impl == "ours"]


def results_root(path: str | None) -> Path:
    return Path(path) if path else Path("results")
