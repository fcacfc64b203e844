"""Configs as data: one YAML per (algorithm, paper) under ``replications/configs/``.

A config file holds
  ``paper``            the citation;
  ``hyperparameters``  every field of the algorithm's config dataclass as ``{value: ..., source: ...}``
                       (all fields are required, so a library default is never the paper's by accident;
                       the one exception is a ``late_field``: see there);
  ``env_overrides``    per-env ``{name: {value, source}}`` replacements;
  ``deviations``       where we depart from the paper, and why;
  ``budgets``          named grids (``paper``, ``quick``): env -> steps, seeds, and their source;
  ``scoring``          how a run is scored, as the paper scored it;
  ``reference``        which rows of analysis/data/reported_results.csv are the paper's numbers, and which
                       runs of ours the report compares with (keys: ``REFERENCE_KEYS``);
  ``verdict``          ``equivalence_margin: {value, source}``: the margin inside which a comparison is
                       'equivalent' (analysis/verdicts.py), declared before results are seen;
  ``diagnostics``      training statistics (columns of a run's ``progress.csv``) the report summarises per
                       env: ``{column: what it measures}``.
Unknown keys, wrong types and numbers out of range (``BOUNDS``) are errors (one line, naming what is allowed).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
import yaml

from replications.core.errors import UserError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
TOP_LEVEL_KEYS = {
    "algo",
    "paper",
    "hyperparameters",
    "env_overrides",
    "deviations",
    "budgets",
    "scoring",
    "reference",
    "verdict",
    "diagnostics",
}
REFERENCE_KEYS = {
    "algo",
    "source_startswith",
    "note",
    "compare_algo",
    "compare_overrides",
    "relation",
    "sb3_settings",
    "settings",
    "table_or_figure",
}
DEFAULT_MARGIN = 0.10
"""The equivalence margin where a config declares none: +-10% of the baseline's mean score above a uniformly
random policy's."""


@dataclass(frozen=True)
class Bounds:
    """The numbers a hyperparameter may take: ``low`` to ``high`` (an end left out where ``open_low`` or
    ``open_high``), and never NaN or infinite."""

    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False
    open_high: bool = False

    def __contains__(self, x: float) -> bool:
        above = x > self.low if self.open_low else x >= self.low
        below = x < self.high if self.open_high else x <= self.high
        return math.isfinite(x) and above and below

    def __str__(self) -> str:
        if self.high < math.inf:
            return f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}"
        return f"{'>' if self.open_low else '>='} {self.low:g}" if self.low > -math.inf else ""


FINITE, POSITIVE, NON_NEGATIVE, FRACTION = Bounds(), Bounds(0, open_low=True), Bounds(0), Bounds(0, 1)
COUNT = Bounds(1)
"""Every int hyperparameter (a size, horizon, number of epochs, iterations or steps; each of a tuple of ints,
as ``hidden_sizes``) unless ``BOUNDS`` says otherwise."""
BOUNDS: dict[str, Bounds] = {
    # a name's own entry, else that of its ending: actor_learning_rate -> learning_rate; else FINITE or COUNT
    "learning_rate": POSITIVE,
    "adam_eps": POSITIVE,
    "max_kl": POSITIVE,
    "normalized_step_size": POSITIVE,
    "clip_range": POSITIVE,
    "max_grad_norm": POSITIVE,
    "clip_observations": POSITIVE,
    "clip_rewards": POSITIVE,
    "temperature": POSITIVE,
    "weight_clip": POSITIVE,
    "init_alpha": POSITIVE,
    "gamma": FRACTION,
    "gae_lambda": FRACTION,
    "tau": FRACTION,
    "momentum": FRACTION,
    "line_search_shrink": FRACTION,
    "cg_damping": NON_NEGATIVE,
    "critic_weight_decay": NON_NEGATIVE,
    "log_prob_epsilon": NON_NEGATIVE,
    "qf_updates_ratio": NON_NEGATIVE,
    "warmup_steps": NON_NEGATIVE,
    "min_pool_size": NON_NEGATIVE,
    "normalizer_samples": NON_NEGATIVE,
    "action_layer": Bounds(1, 2),
}


def _bounds(name: str, integer: bool) -> Bounds:
    """The allowed range of hyperparameter ``name`` (an int one if ``integer``)."""
    words = name.split("_")
    for key in ("_".join(words[i:]) for i in range(len(words))):  # the name itself, then its endings
        if key in BOUNDS:
            return BOUNDS[key]
    return COUNT if integer else FINITE


def _check_bounds(name: str, value: Any, annotation: Any, what: str) -> None:
    """A validated number (or tuple of ints) of ``annotation`` within ``_bounds(name)``."""
    if annotation is int:
        numbers, noun = [value], "an integer"
    elif annotation is float:
        numbers, noun = [value], "a finite number"
    elif typing.get_origin(annotation) is tuple and typing.get_args(annotation)[0] is int:
        numbers, noun = list(value), "integers, each"
    else:
        return
    allowed = _bounds(name, integer=annotation is not float)
    if any(x not in allowed for x in numbers):
        raise UserError(f"{what} hyperparameter '{name}' = {value!r}: must be {noun} {allowed}".rstrip())


@dataclass(frozen=True)
class Budget:
    name: str
    steps: dict[str, int]  # env id -> total env steps
    seeds: int
    source: str


@dataclass(frozen=True)
class PaperConfig:
    algo: str
    paper: str
    path: Path
    values: dict[str, Any]
    sources: dict[str, str]
    env_overrides: dict[str, dict[str, Any]]
    deviations: list[str]
    budgets: dict[str, Budget]
    scoring: dict[str, Any]
    reference: dict[str, Any]
    margin: float = DEFAULT_MARGIN
    margin_source: str = "[ours] the suite's default (replications/core/config.py DEFAULT_MARGIN)"
    diagnostics: dict[str, str] = dataclasses.field(default_factory=dict)
    """progress.csv column -> what it measures: summarised per env in the report."""

    def budget(self, name: str) -> Budget:
        if name not in self.budgets:
            raise UserError(f"unknown budget '{name}' for {self.algo}; allowed: {', '.join(self.budgets)}")
        return self.budgets[name]


def _values_and_sources(block: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, str]]:
    values, sources = {}, {}
    for key, entry in block.items():
        if not isinstance(entry, dict) or set(entry) != {"value", "source"}:
            raise UserError(f"{where}: '{key}' must be {{value: ..., source: ...}}, got {entry!r}")
        values[key], sources[key] = entry["value"], str(entry["source"])
    return values, sources


@functools.lru_cache(maxsize=64)
def _parsed_yaml(path: Path, mtime_ns: int) -> Any:
    """The YAML of a config file, parsed once per version of the file (a report resolves hundreds of specs)."""
    return yaml.safe_load(path.read_text())


def load_paper_config(algo: str, path: Path | None = None) -> PaperConfig:
    path = path or CONFIG_DIR / f"{algo}.yaml"
    try:
        raw = copy.deepcopy(_parsed_yaml(path, path.stat().st_mtime_ns))
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read config {path}: {str(exc).splitlines()[0]}") from exc
    unknown = set(raw) - TOP_LEVEL_KEYS
    if unknown:
        raise UserError(f"{path}: unknown keys {sorted(unknown)}; allowed: {sorted(TOP_LEVEL_KEYS)}")
    values, sources = _values_and_sources(raw["hyperparameters"], f"{path}: hyperparameters")
    reference = dict(raw.get("reference") or {})
    if unknown_reference := sorted(set(reference) - REFERENCE_KEYS):
        raise UserError(f"{path}: unknown reference keys {unknown_reference}; allowed: {sorted(REFERENCE_KEYS)}")
    verdict = raw.get("verdict") or {}
    if not isinstance(verdict, dict) or set(verdict) - {"equivalence_margin"}:
        raise UserError(f"{path}: verdict must be {{equivalence_margin: {{value, source}}}}, got {verdict!r}")
    margin, margin_source = _values_and_sources(verdict, f"{path}: verdict")
    margin_value = margin.get("equivalence_margin", DEFAULT_MARGIN)
    if isinstance(margin_value, bool) or not isinstance(margin_value, int | float) or not 0 < margin_value < 1:
        raise UserError(f"{path}: verdict.equivalence_margin = {margin_value!r}: must be a number in (0, 1)")
    diagnostics = raw.get("diagnostics") or {}
    if not isinstance(diagnostics, dict) or not all(isinstance(v, str) for v in diagnostics.values()):
        raise UserError(f"{path}: diagnostics must map progress.csv columns to what they measure, got {diagnostics!r}")
    overrides = {
        env: _values_and_sources(block, f"{path}: env_overrides.{env}")[0]
        for env, block in (raw.get("env_overrides") or {}).items()
    }
    budgets = {
        name: Budget(name, {str(k): int(v) for k, v in b["envs"].items()}, int(b["seeds"]), str(b["source"]))
        for name, b in raw["budgets"].items()
    }
    return PaperConfig(
        raw["algo"],
        raw["paper"],
        path,
        values,
        sources,
        overrides,
        list(raw.get("deviations") or []),
        budgets,
        dict(raw.get("scoring") or {}),
        reference,
        float(margin_value),
        margin_source.get("equivalence_margin", PaperConfig.margin_source),
        {str(k): v for k, v in diagnostics.items()},
    )


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["lr=1e-3", "hidden_sizes=[32,32]", "activation=relu"]`` -> typed dict (JSON values, else str)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set expects key=value, got '{item}'")
        try:
            out[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            out[key.strip()] = text
    return out


def _tuplify(value: Any, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if origin in (typing.Union, types.UnionType) and isinstance(value, list):
        return tuple(value)
    return value


def late_field(default: Any) -> Any:
    """A hyperparameter added after runs were stored (an ablation switch), whose ``default`` is the behaviour
    those runs had. Config files may leave it out, and at its default it is left out of a run's identity
    (``identity``), so every stored run keeps its id and a changed value makes a new run."""
    return dataclasses.field(default=default, metadata={"late": True})


def _late_defaults(config_cls: type) -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(config_cls) if f.metadata.get("late")}


def identity(cfg: Any) -> dict[str, Any]:
    """The hyperparameters that identify a run of ``cfg``: all its fields but the late ones at their default."""
    late = _late_defaults(type(cfg))
    return {k: v for k, v in dataclasses.asdict(cfg).items() if not (k in late and v == late[k])}


def build_config(config_cls: type, values: dict[str, Any], what: str) -> Any:
    """Validate ``values`` against the frozen dataclass ``config_cls``: names exact, types strict, numbers in
    range (``BOUNDS``)."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise UserError(f"unknown {what} hyperparameter '{unknown[0]}'; allowed: {', '.join(fields)}")
    missing = sorted(set(fields) - set(values) - set(_late_defaults(config_cls)))
    if missing:
        raise UserError(f"{what} config is missing hyperparameters {missing}")
    hints = typing.get_type_hints(config_cls)
    return config_cls(**{name: _checked(name, value, hints[name], what) for name, value in values.items()})


def _checked(name: str, value: Any, annotation: Any, what: str) -> Any:
    """``value`` of hyperparameter ``name`` validated against its type (strictly) and its range."""
    value = _tuplify(value, annotation)
    try:
        checked = pydantic.TypeAdapter(annotation).validate_python(value, strict=True)
    except pydantic.ValidationError as exc:
        expected = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
        raise UserError(
            f"{what} hyperparameter '{name}' = {value!r}: expected {expected} ({exc.errors()[0]['msg']})"
        ) from exc
    _check_bounds(name, checked, annotation, what)
    return checked


def resolve(paper: PaperConfig, config_cls: type, env_id: str, overrides: dict[str, Any]) -> Any:
    """Paper values, then the env's overrides, then the user's ``--set`` values; validated."""
    values = {**paper.values, **paper.env_overrides.get(env_id, {}), **overrides}
    return build_config(config_cls, values, paper.algo)
