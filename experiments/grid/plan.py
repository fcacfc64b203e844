"""Plan a replication grid: the run specs of an algorithm's budget (its envs, seeds and steps, from the paper
config), each a validated ``RunSpec`` whose run id the store files it under, and the comparison a report on
it draws (``build_comparison``; ``stored_comparisons`` for every grid a results store has runs of). Planning is
the one place that reads the algorithms' configs to compute run ids; reporting draws what it is given."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from experiments.registry import ALGOS, check_impls, get_algo
from experiments.reporting.comparison import CONFIG_VALUES, MATCHED, Comparison, Group, comparators
from experiments.reporting.write import variant_grids
from experiments.store import ResultsStore, RunSpec
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


def build_comparison(
    algo: str,
    budget: str,
    specs: list[RunSpec],
    overrides: dict[str, Any] | None = None,
    steps: int | None = None,
) -> Comparison:
    """The comparison a report on the grid ``specs`` draws, from ``algo``'s config (validated here)."""
    paper = load_paper_config(algo)
    overrides = overrides or {}
    has_sb3 = any(s.impl == "sb3" for s in specs)
    ours = [s for s in specs if s.impl == "ours"]
    baselines: list[Group] = [Group("sb3", "SB3", ())]
    compare = comparators(paper.reference)
    if compare and not has_sb3:  # no SB3 counterpart: against our own algorithms, same envs, seeds and steps
        baselines = [
            Group(
                c.key,
                c.label,
                tuple(make_spec(c.algo, "ours", s.env, s.seed, s.steps, budget, c.overrides_for(s.env)) for s in ours),
                comparator=True,
            )
            for c in compare
        ]
    relation = paper.reference.get("relation", "")
    if overrides:
        settings = ", ".join(f"{k} = {json.dumps(v)}" for k, v in sorted(overrides.items()))
        relation = (
            f"Ablation: 'ours' is our {algo.upper()} with {settings}; it is tested against the same grid at the "
            f"config's own values (and SB3's, where the grid has none of its own), where those runs are stored."
        )
        added = [
            Group(
                CONFIG_VALUES,
                f"our {algo.upper()} (config values)",
                tuple(make_spec(algo, "ours", s.env, s.seed, s.steps, budget, {}) for s in ours),
                if_stored=True,
            )
        ]
        if "sb3" in get_algo(algo).impls and not has_sb3:  # an ablation of ours alone: SB3 at its own
            added.append(
                Group(
                    "sb3",
                    "SB3",
                    tuple(make_spec(algo, "sb3", s.env, s.seed, s.steps, budget, {}) for s in ours),
                    if_stored=True,
                )
            )
        baselines = added + [b for b in baselines if b.key not in {g.key for g in added}]
    matched = paper.reference.get("sb3_settings") if has_sb3 else None
    extra_pairs: list[tuple[str, str, str]] = []
    matched_ids: frozenset[str] = frozenset()
    notes: list[str] = []
    if matched:  # ours again at SB3's settings: its own rows and a comparison with SB3 of its own
        matched_ids = frozenset(s.run_id for s in sb3_settings_specs(algo, budget, specs))
        baselines.append(Group(MATCHED, matched["label"], ()))
        extra_pairs.append((MATCHED, matched["label"], "sb3"))
        notes.append(f"{matched['label']}: {matched['why']}")
    return Comparison(
        algo=algo,
        budget=budget,
        specs=tuple(specs),
        baselines=tuple(baselines),
        extra_pairs=tuple(extra_pairs),
        matched_ids=matched_ids,
        matched_label=matched["label"] if matched else "",
        notes=tuple(notes),
        relation=relation,
        margin=paper.margin,
        margin_source=paper.margin_source,
        reference=dict(paper.reference),
        overrides=dict(overrides),
        steps=steps,
    )


def stored_comparisons(store: ResultsStore, reports_root: Path) -> Iterator[Comparison]:
    """The comparison of every report the store has runs for: each algorithm's budgets (paper, quick,
    crosscheck...) with at least one stored run of its grid, then the grids reports were written for with
    ``--steps`` or ``--set`` (their folders' grid.json)."""
    done = set(store.read_index().run_id)
    for algo in ALGOS:
        for budget in load_paper_config(algo).budgets:
            specs = plan_grid(algo, budget)
            if done & {s.run_id for s in specs}:
                yield build_comparison(algo, budget, specs)
    for grid in variant_grids(reports_root):
        specs = plan_grid(
            grid["algo"],
            grid["budget"],
            seeds=grid["seeds"],
            envs=grid["envs"],
            impls=grid["impls"],
            overrides=grid["overrides"],
            steps=grid["steps"],
        )
        yield build_comparison(grid["algo"], grid["budget"], specs, grid["overrides"], grid["steps"])
