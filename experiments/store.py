"""The local results store: one directory per run, keyed by a hash of its resolved config, plus a
consolidated table (``index.csv``) that the analysis reads. Needs no server.

Layout under the results root::

    index.csv                                   one row per finished run (written under a file lock)
    scores.csv                                  the analysis's cache of each run's score (analysis/scores.py)
    runs/<algo>/<env>/<impl>/seed<N>-<run_id>/
        config.json      the resolved config (algo, impl, env, seed, steps, budget, hyperparameters)
        meta.json        status (running|complete|failed), git commit + dirty flag, package versions,
                         machine (CPU/GPU model), start/end, wall time, steps/s, SB3 differences
        progress.csv     per-iteration statistics          episodes.csv   per-episode raw returns
        evaluations.csv  deterministic evaluation episodes (off-policy algorithms and AWR)
        normalization.npz  the env normalisation statistics at the end of training (where there is one)
        model.pt         the final networks (not committed)   checkpoint.pt   while running only (resume)

The store holds what a run produced; it never scores a run (a score is the analysis's reading of
``episodes.csv`` / ``evaluations.csv`` under the algorithm's scoring rule). Every file is written atomically
(temp file + rename), readable as the umask allows. A run's row enters
``index.csv`` only after its directory is complete, so an interrupted run never leaves a row that analysis
would count. The index is a cache derived from the run directories: every read validates it whole (a cut or
edited row is an error naming its line, never a silently dropped run), and ``rebuild_index`` derives it again.
Only directories named ``seed<N>-<run id>`` whose config.json agrees count as runs; another name (a backup
copy) is named and skipped, and a run directory whose meta.json or config.json cannot be read is an error
naming it, never dropped, deleted or re-run. A run whose status is ``running`` or ``failed`` is re-run: from
its checkpoint (``checkpoint.pt``, plain data, see replications/core/checkpoint.py) when it was stopped while
running under the same git commit, from scratch otherwise. A complete run is deleted only by ``train --force``.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import platform
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from filelock import FileLock, Timeout

from replications.core.checkpoint import CHECKPOINT_FILE
from replications.core.errors import UserError

INDEX_COLUMNS = [
    "run_id",
    "config_id",
    "algo",
    "impl",
    "env",
    "seed",
    "steps",
    "budget",
    "n_episodes",
    "wall_s",
    "sps",
    "commit",
    "dirty",
    "cpu",
    "finished_at",
    "path",
]
PACKAGES = ["torch", "stable-baselines3", "sb3-contrib", "gymnasium", "mujoco", "numpy", "pandas", "scipy"]
REPO_ROOT = Path(__file__).resolve().parent.parent


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class RunSpec:
    """Everything that determines a run. ``config_id`` excludes the seed; ``run_id`` includes it."""

    algo: str
    impl: str
    env: str
    seed: int
    steps: int
    budget: str
    hyperparameters: dict[str, Any] = field(hash=False)
    impl_settings: dict[str, Any] = field(default_factory=dict, hash=False)
    """Library-specific settings derived from the hyperparameters (SB3's keyword arguments)."""

    @property
    def config_id(self) -> str:
        return _hash(
            {
                "algo": self.algo,
                "impl": self.impl,
                "env": self.env,
                "steps": self.steps,
                "hyperparameters": self.hyperparameters,
                "impl_settings": self.impl_settings,
            }
        )

    @property
    def run_id(self) -> str:
        return _hash({"config_id": self.config_id, "seed": self.seed})

    def relpath(self) -> str:
        return run_relpath(self.algo, self.env, self.impl, self.seed, self.run_id)


def run_relpath(algo: str, env: str, impl: str, seed: int, run_id: str) -> str:
    """A run's directory under a results root."""
    return f"runs/{algo}/{env}/{impl}/seed{seed}-{run_id}"


def _dir_lock(path: Path) -> FileLock:
    """The lock a process holds while it runs the run in ``path`` (beside it, so deleting the run keeps it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path.parent / f".{path.name}.lock"), timeout=0)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def readable_as_umask_allows(path: Path, directory: bool = False) -> None:
    """``mkstemp``/``mkdtemp`` create 0600/0700; give the file the mode an ordinary create would have."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        readable_as_umask_allows(Path(tmp))
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance() -> dict[str, Any]:
    """Git commit, dirty flag, package versions and machine of this process."""
    import torch

    from replications.core.cuda_graph import graph_updates_requested

    versions: dict[str, str | None] = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    commit = _git("rev-parse", "HEAD")
    if commit:
        # code changes only: results/ and reports/ are data this very process may be writing
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!results", ":!reports"))
    else:  # the Docker image has no .git: the build recorded the commit and tree state it was built from
        commit, dirty = os.environ.get("RLREPRO_COMMIT", ""), os.environ.get("RLREPRO_DIRTY") == "1"
    return {
        "commit": commit or None,
        "dirty": dirty,
        "image": os.environ.get("RLREPRO_IMAGE"),
        "packages": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
        # where the off-policy networks ran (the algorithm is the same on every device)
        "device": os.environ.get("RLREPRO_DEVICE", "cpu"),
        "cuda_graph": graph_updates_requested(),
    }


def _index_row(cfg: dict[str, Any], meta: dict[str, Any], relpath: str) -> dict[str, Any]:
    """A complete run's row of the consolidated table, from its config.json and meta.json."""
    row = {key: cfg[key] for key in ("run_id", "config_id", "algo", "impl", "env", "seed", "budget")}
    row.update({key: meta.get(key) for key in ("steps", "n_episodes", "wall_s", "sps", "commit", "dirty", "cpu")})
    return {**row, "finished_at": meta["ended_at"], "path": relpath}


RUN_DIR_NAME = re.compile(r"seed(0|[1-9][0-9]*)-[0-9a-f]{12}")
"""The name of a run directory: ``seed<N>-<run id>``."""
_COMPLETE_FIELDS: dict[str, tuple[type, ...]] = {
    "ended_at": (str,),
    "steps": (int,),
    "n_episodes": (int,),
}


def check_meta(meta: Any, where: Path | str) -> dict[str, Any]:
    """``meta`` if it is a run's meta.json (an object with a status; a complete run's with its results), else
    a UserError naming the file."""
    if not isinstance(meta, dict) or not isinstance(meta.get("status"), str):
        raise UserError(f"{where}: not a run's meta.json (a JSON object with a 'status'); nothing was changed")
    if meta["status"] == "complete":
        for key, kinds in _COMPLETE_FIELDS.items():
            value = meta.get(key)
            if not isinstance(value, kinds) or isinstance(value, bool) or value in (math.inf, -math.inf):
                raise UserError(
                    f"{where}: a complete run's meta.json needs '{key}' ({kinds[-1].__name__}), it has {value!r}; "
                    "nothing was changed"
                )
    return meta


def read_meta(run_dir: Path) -> dict[str, Any] | None:
    """A run directory's meta.json, checked (``check_meta``); None when the file does not exist."""
    path = run_dir / "meta.json"
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UserError(f"{path}: unreadable ({exc.strerror}); nothing was changed") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text; nothing was changed") from None
    try:
        return check_meta(json.loads(text), path)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno}); nothing was changed") from None


def read_config(run_dir: Path) -> dict[str, Any]:
    """A run directory's config.json and the place it puts the run; a UserError naming the file if unreadable."""
    path = run_dir / "config.json"
    try:
        cfg = json.loads(path.read_text())
        run_relpath(cfg["algo"], cfg["env"], cfg["impl"], cfg["seed"], cfg["run_id"])
    except FileNotFoundError:
        raise UserError(f"{path}: missing; nothing was changed") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: unreadable ({type(exc).__name__}: {exc}); nothing was changed") from None
    return cfg


def check_index(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``df`` if every row of the index is whole and consistent, else a UserError naming the first bad line."""
    missing = [c for c in INDEX_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"results index {path} is corrupt (missing columns {missing}); {_REBUILD}")
    problems: list[tuple[int, str]] = []
    required = [c for c in INDEX_COLUMNS if c not in ("commit", "cpu", "wall_s", "sps", "dirty")]
    for col in required:
        for i in df.index[df[col].isna()]:
            problems.append((i, f"'{col}' is empty"))
    for col in ("seed", "steps", "n_episodes"):
        numeric = pd.to_numeric(df[col], errors="coerce")
        for i in df.index[numeric.isna() & df[col].notna()]:
            problems.append((i, f"'{col}' is {df.at[i, col]!r}, not a number"))
    if not problems:
        for i, row in df.iterrows():
            seed = float(row.seed)
            if seed < 0 or seed != int(seed):
                problems.append((i, f"seed {row.seed!r} is not a non-negative integer"))
            elif row.path != run_relpath(row.algo, row.env, row.impl, int(seed), row.run_id):
                problems.append((i, f"path {row.path!r} is not where run {row.run_id} belongs"))
        for i in df.index[df.run_id.duplicated(keep="first")]:
            problems.append((i, f"run {df.at[i, 'run_id']} is listed twice"))
    if problems:
        i, what = min(problems)
        raise UserError(f"results index {path} line {int(i) + 2}: {what}; {_REBUILD}")
    return df


_REBUILD = "nothing was changed; rebuild it from the run directories with 'rlrepro index --rebuild'"


class RunBusy(UserError):
    """Another live process holds the run's lock: it is running that run now."""


class RunDone(RunBusy):
    """The run was completed (by another process on the same store) after this grid was planned."""


class ResultsStore:
    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.index_path = self.root / "index.csv"
        self._lock = FileLock(str(self.root / ".index.lock"))
        self._held: dict[str, FileLock] = {}  # run_id -> the lock of a run this process is running

    # -- one process per run ----------------------------------------------------------------------
    def _run_lock(self, spec: RunSpec) -> FileLock:
        return _dir_lock(self.path(spec))

    def busy(self, spec: RunSpec) -> bool:
        """Whether another live process is running ``spec`` now (it holds the run's lock; two ``replicate``
        commands on one store each skip what the other is running, and neither deletes the other's files)."""
        if spec.run_id in self._held:
            return False
        lock = self._run_lock(spec)
        try:
            lock.acquire()
        except Timeout:
            return True
        lock.release()
        return False

    def _release(self, spec: RunSpec) -> None:
        lock = self._held.pop(spec.run_id, None)
        if lock is not None:
            lock.release()

    # -- run directories -------------------------------------------------------------------------
    def path(self, spec: RunSpec) -> Path:
        return self.root / spec.relpath()

    def meta(self, spec: RunSpec) -> dict[str, Any] | None:
        return self.meta_at(spec.relpath())

    def meta_at(self, relpath: str | Path) -> dict[str, Any] | None:
        """A run directory's meta.json (``relpath`` as the index's ``path`` column); None if there is none; a
        UserError naming the file if it cannot be read."""
        return read_meta(self.root / relpath)

    def is_complete(self, spec: RunSpec) -> bool:
        """Whether ``spec``'s directory holds its complete run (a UserError naming the file if the directory
        holds a run whose meta.json or config.json cannot be read)."""
        meta = self.meta(spec)
        if meta is None or meta["status"] != "complete":
            return False
        read_config(self.path(spec))
        return True

    def resumable(self, spec: RunSpec) -> bool:
        """Killed while running (status still ``running``), with a checkpoint, under the current commit."""
        meta = self.meta(spec) or {}
        return (
            meta.get("status") == "running"
            and (self.path(spec) / CHECKPOINT_FILE).exists()
            and meta.get("commit") == provenance()["commit"]
        )

    def begin(self, spec: RunSpec) -> Path:
        """The directory for ``spec``: a killed attempt's if it can resume (see ``resumable``), else fresh."""
        self.read_index()  # a corrupt index stops the run before any work, not after it
        path = self.path(spec)
        if spec.run_id not in self._held:  # held until complete() or fail(), or this process ends
            lock = self._run_lock(spec)
            try:
                lock.acquire()
            except Timeout:
                raise RunBusy(
                    f"run {spec.run_id} ({spec.algo} {spec.impl} {spec.env} seed {spec.seed}) is being run by "
                    f"another process (lock {lock.lock_file}); nothing was changed"
                ) from None
            self._held[spec.run_id] = lock
        if self.is_complete(spec):  # checked under the lock: a run another process has just finished counts
            self._release(spec)
            raise RunDone(f"run {spec.run_id} is already complete at {path}; nothing was changed")
        if self.resumable(spec):
            meta = self.meta(spec) or {}
            meta.setdefault("resumed_at", []).append(time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            meta.update(hostname=socket.gethostname(), pid=os.getpid())
            write_atomic(path / "meta.json", json.dumps(meta, indent=2))
            return path
        if path.exists():
            self._check_unfinished(path)
            shutil.rmtree(path)
        # config.json and meta.json appear together: written in a hidden folder (which no scan reads, and
        # the next begin clears), renamed into place; a kill between the two writes leaves no half run
        starting = path.with_name(f".{path.name}.starting")
        shutil.rmtree(starting, ignore_errors=True)
        starting.mkdir(parents=True)
        write_atomic(
            starting / "config.json",
            json.dumps({**asdict(spec), "config_id": spec.config_id, "run_id": spec.run_id}, indent=2),
        )
        meta = {
            "status": "running",
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "seed": spec.seed,
            "pid": os.getpid(),
            **provenance(),
        }
        write_atomic(starting / "meta.json", json.dumps(meta, indent=2))
        starting.rename(path)
        return path

    @staticmethod
    def _check_unfinished(path: Path) -> None:
        """A directory ``begin`` may start over: an unfinished (running or failed) run's, or an empty one."""
        meta = read_meta(path)
        if meta is None and any(path.iterdir()):
            raise UserError(
                f"run directory {path} holds files ({', '.join(sorted(p.name for p in path.iterdir())[:4])}) but "
                "no meta.json: it may be a finished run; nothing was changed; restore its meta.json, or move the "
                "directory away to run it again"
            )
        if meta is not None and meta["status"] not in ("running", "failed"):
            raise UserError(
                f"run directory {path} has status {meta['status']!r}; nothing was changed; a complete run is "
                "run again only with 'rlrepro train --force'"
            )

    def install(self, spec: RunSpec, files: dict[str, bytes]) -> dict[str, Any]:
        """Add a run finished elsewhere (a Ray node) from its directory's files; returns its index row."""
        meta = json.loads(files["meta.json"])
        if meta.get("status") != "complete":
            raise ValueError(f"run {spec.run_id}: cannot install a run whose status is {meta.get('status')!r}")
        path = self.path(spec)
        tmp = path.with_name(f".{path.name}.installing")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
        row = _index_row(json.loads(files["config.json"]), meta, spec.relpath())
        self._add_rows([row])
        return row

    def fail(self, spec: RunSpec, error: str) -> None:
        """Mark ``spec`` failed (creating its directory if the run failed elsewhere, on a Ray node)."""
        if not (self.path(spec) / "config.json").exists():
            write_atomic(
                self.path(spec) / "config.json",
                json.dumps({**asdict(spec), "config_id": spec.config_id, "run_id": spec.run_id}, indent=2),
            )
        meta = self.meta(spec) or {}
        meta.update(status="failed", error=error, ended_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        write_atomic(self.path(spec) / "meta.json", json.dumps(meta, indent=2))
        self._release(spec)

    def interrupted(self, spec: RunSpec) -> None:
        """Let go of ``spec`` after a Ctrl-C: its status stays ``running`` and its checkpoint stays, so it resumes."""
        self._release(spec)

    def complete(self, spec: RunSpec, facts: dict[str, Any], wall_s: float, n_episodes: int) -> dict[str, Any]:
        path = self.path(spec)
        norm = facts.get("normalization") or {}
        if norm:
            np.savez(path / "normalization.npz", **norm)
        meta = self.meta(spec) or {}
        steps = int(facts["steps"])
        meta.update(
            status="complete",
            ended_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            wall_s=round(wall_s, 2),
            steps=steps,
            sps=round(steps / max(wall_s, 1e-9), 1),
            n_episodes=n_episodes,
            sb3_differences=facts.get("sb3_differences", []),
            seed_parallel=facts.get("seed_parallel", 1),
        )
        write_atomic(path / "meta.json", json.dumps(meta, indent=2))
        cfg = json.loads((path / "config.json").read_text())
        row = _index_row(cfg, meta, spec.relpath())
        self._add_rows([row])
        self._release(spec)
        return row

    # -- the consolidated table ------------------------------------------------------------------
    def read_index(self) -> pd.DataFrame:
        if not self.index_path.exists():
            return pd.DataFrame(columns=INDEX_COLUMNS)
        try:
            raw = self.index_path.read_bytes()
            if not raw.strip():
                raise ValueError("empty, not even a header")
            if not raw.endswith(b"\n"):
                raise ValueError("cut short: no newline at its end")
            df = pd.read_csv(io.BytesIO(raw), float_precision="round_trip")  # rewrites keep every digit
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise UserError(
                f"results index {self.index_path} is unreadable ({str(exc).splitlines()[0]}); {_REBUILD}"
            ) from exc
        # only the index's own columns (an index written before scores moved to the analysis had 'score')
        return check_index(df, self.index_path)[INDEX_COLUMNS]

    def _add_rows(self, rows: list[dict[str, Any]]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock:
            df = self.read_index()
            new = pd.DataFrame(rows, columns=INDEX_COLUMNS)
            df = new if df.empty else pd.concat([df[~df.run_id.isin(new.run_id)], new], ignore_index=True)
            df = df.sort_values(["algo", "env", "impl", "seed", "run_id"])
            write_atomic(self.index_path, df.to_csv(index=False))

    def rebuild_index(self) -> tuple[int, list[str]]:
        """Rebuild ``index.csv`` from the complete run directories; returns (number of runs, directories skipped
        with the reason: names that are not a run's, such as backup copies). A run directory that cannot be
        read stops the rebuild with its name, and the index is left as it was."""
        if not (self.root / "runs").is_dir():
            raise UserError(f"no runs/ folder under {self.root}: not a results root; nothing was changed")
        with self._lock:  # scanned under the lock too: a run completing meanwhile is not dropped
            runs, skipped = scan_runs(self.root)
            rows = [_index_row(cfg, meta, rel) for rel, cfg, meta in runs if meta["status"] == "complete"]
            df = pd.DataFrame(rows, columns=INDEX_COLUMNS).sort_values(["algo", "env", "impl", "seed", "run_id"])
            write_atomic(self.index_path, df.to_csv(index=False))
        return len(rows), skipped

    def import_runs(self, source: Path | str) -> tuple[list[str], list[str]]:
        """Copy the complete runs of another results root (a GPU machine's, a cluster node's, a colleague's)
        into this store and index them. A run this store already has complete, or is running now, is left
        as it is; an unfinished attempt here is replaced, as ``begin`` would. Returns (imported, skipped
        with the reason)."""
        source = Path(source)
        found, skipped = scan_runs(source)
        if not found:
            raise UserError(
                f"no run directories under {source}; expected a results root holding runs/ALGO/ENV/IMPL/seedN-ID"
            )
        imported, rows = [], []
        for rel, cfg, meta in found:
            if meta["status"] != "complete":
                skipped.append(f"{rel}: status {meta['status']!r}, not complete")
                continue
            links = [p.name for p in (source / rel).rglob("*") if p.is_symlink()]
            if links:
                skipped.append(f"{rel}: holds symbolic links ({', '.join(links)}); only plain files are imported")
                continue
            dest = self.root / rel
            lock = _dir_lock(dest)
            try:
                lock.acquire()
            except Timeout:
                skipped.append(f"{rel}: a process is running it in {self.root} now")
                continue
            try:
                here = read_meta(dest) or {}
                if here.get("status") == "complete":
                    skipped.append(f"{rel}: already complete in {self.root} (left as it is)")
                    continue
                tmp = dest.parent / f".{dest.name}.importing"
                shutil.rmtree(tmp, ignore_errors=True)
                shutil.copytree(source / rel, tmp, ignore=shutil.ignore_patterns("*.pt", "checkpoint*", ".*"))
                shutil.rmtree(dest, ignore_errors=True)  # an unfinished attempt here
                tmp.rename(dest)
            finally:
                lock.release()
            rows.append(_index_row(cfg, meta, rel))
            imported.append(rel)
        if rows:
            self._add_rows(rows)
        return imported, skipped


def scan_runs(root: Path) -> tuple[list[tuple[str, dict[str, Any], dict[str, Any]]], list[str]]:
    """((relpath, config, meta) of every run directory under ``root``, the directories skipped with why).

    A directory at run depth whose name is not ``seed<N>-<run id>`` is skipped (a backup copy, say); a run
    directory whose meta.json or config.json cannot be read, or whose config places it elsewhere, is a
    UserError naming it (with how many more there are): a run is never dropped without a word."""
    runs, skipped, bad = [], [], []
    for run_dir in sorted(p for p in root.glob("runs/*/*/*/*") if p.is_dir() and not p.name.startswith(".")):
        rel = run_dir.relative_to(root).as_posix()
        if not RUN_DIR_NAME.fullmatch(run_dir.name) or run_dir.is_symlink():
            skipped.append(f"{rel}: not a run directory (runs are named seed<N>-<run id>, 12 hex digits); not indexed")
            continue
        try:
            meta = read_meta(run_dir)
            if meta is None:
                raise UserError(f"{run_dir / 'meta.json'}: missing")
            cfg = read_config(run_dir)
            expected = run_relpath(cfg["algo"], cfg["env"], cfg["impl"], cfg["seed"], cfg["run_id"])
            if rel != expected:
                raise UserError(f"{run_dir}: its config.json says it belongs at {expected}")
        except UserError as exc:
            bad.append(str(exc).removesuffix("; nothing was changed"))
            continue
        runs.append((rel, cfg, meta))
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise UserError(
            f"run directory unreadable: {bad[0]}{more}; nothing was changed; "
            f"repair it or move it out of {root / 'runs'}"
        )
    return runs, skipped
