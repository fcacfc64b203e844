"""One protocol per grid: a report pools only runs made the same way.

A run's protocol, read from its meta.json: the device class its networks ran on (CPU, CUDA, CUDA with graph
replay), the pinned library versions (``packages``), and, for our algorithms, the golden fingerprint of the
algorithm at the run's commit (``tests/golden/<cpu kind>/<algo>.json`` as committed there: two commits whose
fingerprints differ computed different numbers). A report pools the protocol that holds most of its runs; the
others are set apart, named, with what differs (``split``).

A commit that has no golden fingerprint yet, or that this repository does not hold (or no git), cannot be
checked: such a run joins the main protocol on its device and libraries alone, and the report says how many
were not checked.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = "tests/golden"


@dataclass(frozen=True)
class Protocol:
    device: str  # "cpu", "cuda", "cuda (CUDA graph)"
    libraries: tuple[tuple[str, str], ...]  # sorted (package, version)
    fingerprint: tuple[tuple[str, str], ...] | None  # (cpu kind, hash of the golden file); None: not checked

    def describe(self, against: Protocol) -> str:
        """What differs from ``against``, in words."""
        parts = []
        if self.device != against.device:
            parts.append(f"device {self.device} (the grid: {against.device})")
        if self.libraries != against.libraries:
            mine, theirs = dict(self.libraries), dict(against.libraries)
            names = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            parts.append(
                ", ".join(f"{k} {mine.get(k, 'absent')}" for k in names)
                + " (the grid: "
                + ", ".join(f"{k} {theirs.get(k, 'absent')}" for k in names)
                + ")"
            )
        if self.fingerprint != against.fingerprint and not compatible(self.fingerprint, against.fingerprint):
            parts.append("code whose algorithm fingerprint differs from the grid's (tests/golden at its commit)")
        return "; ".join(parts)


def device_class(meta: dict[str, Any]) -> str:
    device = str(meta.get("device", "cpu"))
    if device == "cpu":
        return "cpu"
    return f"{device} (CUDA graph)" if meta.get("cuda_graph") else device


@functools.cache
def _kinds_at(commit: str) -> tuple[str, ...]:
    out = _git("ls-tree", "--name-only", f"{commit}:{GOLDEN}")
    return tuple(sorted(out.split())) if out else ()


@functools.cache
def fingerprint_at(commit: str, algo: str) -> tuple[tuple[str, str], ...] | None:
    """(cpu kind, sha1 of ``tests/golden/<kind>/<algo>.json``) for every kind committed at ``commit``; None where
    there is none (or no git, or the commit is not in this repository)."""
    found = []
    for kind in _kinds_at(commit):
        text = _git("show", f"{commit}:{GOLDEN}/{kind}/{algo}.json")
        if text:
            found.append((kind, hashlib.sha1(text.encode()).hexdigest()[:12]))
    return tuple(found) or None


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def compatible(a: tuple[tuple[str, str], ...] | None, b: tuple[tuple[str, str], ...] | None) -> bool:
    """Two fingerprints agree on every cpu kind both have (an unchecked one agrees with anything)."""
    if a is None or b is None:
        return True
    da, db = dict(a), dict(b)
    return all(da[k] == db[k] for k in set(da) & set(db))


def protocol_of(meta: dict[str, Any], algo: str, impl: str) -> Protocol:
    """The protocol of one run; SB3's runs have no fingerprint of ours (their code is the pinned library)."""
    commit = str(meta.get("commit") or "")
    fingerprint = fingerprint_at(commit, algo) if impl != "sb3" and commit else None
    libraries = tuple(sorted((str(k), str(v)) for k, v in (meta.get("packages") or {}).items()))
    return Protocol(device_class(meta), libraries, fingerprint)


def split(runs: list[tuple[str, Protocol]]) -> tuple[dict[str, Protocol], list[int]]:
    """The main protocol of each algorithm among ``runs`` ((algo, protocol) pairs): the device and libraries of
    the most runs overall (ties: CPU first), and for each algorithm the checked fingerprint most of its runs on
    that device and those libraries have. Returns it and the positions of the runs that do not share it."""
    if not runs:
        return {}, []
    base = Counter((p.device, p.libraries) for _, p in runs)
    (device, libraries), _ = max(base.items(), key=lambda kv: (kv[1], kv[0][0] == "cpu", kv[0]))
    main: dict[str, Protocol] = {}
    for algo in dict.fromkeys(a for a, _ in runs):
        checked = Counter(
            p.fingerprint for a, p in runs if a == algo and (p.device, p.libraries) == (device, libraries)
        )
        checked.pop(None, None)
        main[algo] = Protocol(device, libraries, max(checked.items(), key=lambda kv: kv[1])[0] if checked else None)
    apart = [
        i
        for i, (algo, p) in enumerate(runs)
        if (p.device, p.libraries) != (device, libraries) or not compatible(p.fingerprint, main[algo].fingerprint)
    ]
    return main, apart
