"""What a report compares, as one validated object built once from the config.

``Comparison`` holds the grid's runs (ours, SB3, ours again at SB3's settings), the baselines ours is tested
against (SB3; or, for an algorithm with no SB3 counterpart, our other algorithms at the settings the config
names; or, for an ablation, the same grid at the config's own values), the extra pairs, the equivalence margin,
the expected relation and the reference block. ``rlrepro replicate`` plans its runs from it
(``runs_to_run``) and ``rlrepro report`` draws them (experiments/reporting/write.py); neither assembles its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from experiments.store import RunSpec
from replications.core.config import load_paper_config
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


def comparators(reference: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], str]]:
    """(key, algo, overrides, label) of each of our algorithms a report compares with (``reference.compare_algo``).

    An entry is an algorithm name (its paper config with ``reference.compare_overrides``) or a mapping
    ``{algo, overrides, label, key}``, so one algorithm can appear twice at different settings. The first
    entry gives the summary's verdict.
    """
    raw = reference.get("compare_algo") or []
    out = []
    for entry in [raw] if isinstance(raw, str | dict) else raw:
        if isinstance(entry, str):
            entry = {"algo": entry, "overrides": reference.get("compare_overrides", {})}
        unknown = set(entry) - {"algo", "overrides", "label", "key"}
        if "algo" not in entry or unknown:
            raise UserError(
                f"reference.compare_algo entry {entry!r}: needs 'algo'; allowed keys: algo, overrides, label, key"
            )
        algo = entry["algo"]
        out.append(
            (
                entry.get("key", algo),
                algo,
                dict(entry.get("overrides") or {}),
                entry.get("label", f"our {algo.upper()}"),
            )
        )
    keys = [key for key, *_ in out]
    if len(set(keys)) < len(keys):
        raise UserError(f"reference.compare_algo: two entries share a key ({', '.join(keys)}); give each a 'key'")
    return out


def build_comparison(
    algo: str,
    budget: str,
    specs: list[RunSpec],
    overrides: dict[str, Any] | None = None,
    steps: int | None = None,
) -> Comparison:
    """The comparison a report on the grid ``specs`` draws, from ``algo``'s config (validated here)."""
    from experiments.grid import make_spec, sb3_settings_specs
    from experiments.registry import get_algo

    paper = load_paper_config(algo)
    overrides = overrides or {}
    has_sb3 = any(s.impl == "sb3" for s in specs)
    ours = [s for s in specs if s.impl == "ours"]
    baselines: list[Group] = [Group("sb3", "SB3", ())]
    compare = comparators(paper.reference)
    if compare and not has_sb3:  # no SB3 counterpart: against our own algorithms, same envs, seeds and steps
        baselines = [
            Group(
                key,
                label,
                tuple(make_spec(other, "ours", s.env, s.seed, s.steps, budget, extra) for s in ours),
                comparator=True,
            )
            for key, other, extra, label in compare
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
