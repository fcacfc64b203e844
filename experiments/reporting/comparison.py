"""What a report compares, as one validated object built once from the config.

``Comparison`` holds the grid's runs (ours, SB3, ours again at SB3's settings), the baselines ours is tested
against (SB3; or, for an algorithm with no SB3 counterpart, our other algorithms at the settings the config
names; or, for an ablation, the same grid at the config's own values), the extra pairs, the equivalence margin,
the expected relation and the reference block. It is built once, by the planning room
(experiments/grid/plan.py: ``build_comparison``, which computes each run's id from the algorithm's config);
``rlrepro replicate`` runs its runs (``runs_to_run``) and ``rlrepro report`` draws them
(experiments/reporting/write.py). The reporting room never imports the algorithms: it draws the run ids it is
given (tests/test_report.py checks the imports).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from experiments.store import RunSpec
from replications.core.errors import UserError

MATCHED = "ours-sb3-settings"
"""The impl key of our runs at SB3's settings (``reference.sb3_settings`` in a config) in a report."""
CONFIG_VALUES = "config-values"
"""The impl key, in an ablation report (``--set``), of our runs of the same grid at the config's own values."""


@dataclass(frozen=True)
class Group:
    """Runs a report labels ``key`` (its tables' impl column) and names ``label``."""

    key: str
    label: str
    specs: tuple[RunSpec, ...]
    comparator: bool = False  # runs of another algorithm of ours (``--with-comparators`` runs them)
    if_stored: bool = False  # an ablation's reference: drawn only where some of its runs are stored


@dataclass(frozen=True)
class Comparison:
    algo: str
    budget: str
    specs: tuple[RunSpec, ...]  # the grid itself: what ``replicate`` runs
    baselines: tuple[Group, ...]  # what 'ours' is tested against; the first gives the summary's verdict
    extra_pairs: tuple[tuple[str, str, str], ...] = ()  # (tested key, its label, baseline key)
    matched_ids: frozenset[str] = frozenset()  # run ids of the grid's runs of ours at SB3's settings
    matched_label: str = ""
    notes: tuple[str, ...] = ()  # settings differences the comparison itself introduces
    relation: str = ""
    margin: float = 0.10
    margin_source: str = ""
    reference: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    steps: int | None = None

    @property
    def comparators(self) -> list[Group]:
        return [g for g in self.baselines if g.comparator]

    def runs_to_run(self, with_comparators: bool = False) -> list[RunSpec]:
        """The grid, and with ``with_comparators`` the runs of our other algorithms it is tested against."""
        if not with_comparators:
            return list(self.specs)
        if not self.comparators:
            raise UserError(f"--with-comparators: {self.algo}'s report compares with no other algorithm of ours")
        others = [s for g in self.comparators for s in g.specs]
        return list(self.specs) + [s for s in dict.fromkeys(others) if s not in self.specs]

    def impl_label(self, spec: RunSpec) -> str:
        """How a run of the grid is named where it is missing: its impl, or the matched label."""
        return self.matched_label if spec.run_id in self.matched_ids else spec.impl


@dataclass(frozen=True)
class Comparator:
    """One of our algorithms a report compares with, at the settings the config names: ``overrides`` on every
    env, ``env_overrides[env]`` on top where the compared algorithm's own config changes a value per env."""

    key: str
    algo: str
    overrides: dict[str, Any]
    label: str
    env_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    def overrides_for(self, env: str) -> dict[str, Any]:
        return {**self.overrides, **self.env_overrides.get(env, {})}


COMPARATOR_KEYS = ("algo", "overrides", "env_overrides", "label", "key")


def comparators(reference: dict[str, Any]) -> list[Comparator]:
    """Each of our algorithms a report compares with (``reference.compare_algo``).

    An entry is an algorithm name (its paper config with ``reference.compare_overrides``) or a mapping
    ``{algo, overrides, env_overrides, label, key}``, so one algorithm can appear twice at different settings.
    The first entry gives the summary's verdict.
    """
    raw = reference.get("compare_algo") or []
    out = []
    for entry in [raw] if isinstance(raw, str | dict) else raw:
        if isinstance(entry, str):
            entry = {"algo": entry, "overrides": reference.get("compare_overrides", {})}
        unknown = set(entry) - set(COMPARATOR_KEYS)
        per_env = entry.get("env_overrides") or {}
        if "algo" not in entry or unknown or not all(isinstance(v, dict) for v in per_env.values()):
            raise UserError(
                f"reference.compare_algo entry {entry!r}: needs 'algo'; allowed keys: {', '.join(COMPARATOR_KEYS)} "
                "(env_overrides: env -> {field: value})"
            )
        algo = entry["algo"]
        out.append(
            Comparator(
                entry.get("key", algo),
                algo,
                dict(entry.get("overrides") or {}),
                entry.get("label", f"our {algo.upper()}"),
                {str(env): dict(v) for env, v in per_env.items()},
            )
        )
    keys = [c.key for c in out]
    if len(set(keys)) < len(keys):
        raise UserError(f"reference.compare_algo: two entries share a key ({', '.join(keys)}); give each a 'key'")
    return out
