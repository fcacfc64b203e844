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
  ``reference``        which rows of analysis/data/reported_results.csv are the paper's numbers.
Unknown keys and wrong types are errors (one line, naming what is allowed).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
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
}


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
        dict(raw.get("reference") or {}),
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
    """Validate ``values`` against the frozen dataclass ``config_cls``: names exact, types strict."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise UserError(f"unknown {what} hyperparameter '{unknown[0]}'; allowed: {', '.join(fields)}")
    missing = sorted(set(fields) - set(values) - set(_late_defaults(config_cls)))
    if missing:
        raise UserError(f"{what} config is missing hyperparameters {missing}")
    hints = typing.get_type_hints(config_cls)
    values = {k: _tuplify(v, hints[k]) for k, v in values.items()}
    checked = {}
    for name, value in values.items():
        try:
            checked[name] = pydantic.TypeAdapter(hints[name]).validate_python(value, strict=True)
        except pydantic.ValidationError as exc:
            expected = getattr(hints[name], "__name__", None) or str(hints[name]).replace("typing.", "")
            raise UserError(
                f"{what} hyperparameter '{name}' = {value!r}: expected {expected} ({exc.errors()[0]['msg']})"
            ) from exc
    return config_cls(**checked)


def resolve(paper: PaperConfig, config_cls: type, env_id: str, overrides: dict[str, Any]) -> Any:
    """Paper values, then the env's overrides, then the user's ``--set`` values; validated."""
    values = {**paper.values, **paper.env_overrides.get(env_id, {}), **overrides}
    return build_config(config_cls, values, paper.algo)
