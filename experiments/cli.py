"""``rlrepro``: a thin command line (argument parsing and printing) over the rooms of ``experiments/``: grid/
(plan and run), reporting/, store.py, publish.py, tools/ (bench, regress, fingerprint, lockstep).

Bad input gets one line, ``rlrepro: error: <what was wrong; what is allowed>``, and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

from replications.core.errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line instead of usage + message
        raise UserError(f"{self.prog}: {message}")


def _csv(text: str | None, option: str, example: str) -> list[str] | None:
    """The items of a comma-separated option (None if it was not given); an empty item is an error, so that
    ``--envs ,`` is never read as no choice (the whole grid)."""
    if text is None:
        return None
    items = [t.strip() for t in text.split(",")]
    if not all(items):
        raise UserError(f"{option} {text!r} has an empty item; give one or more comma-separated names, e.g. {example}")
    return items


def _positive_int(text: str) -> int:
    """argparse type of a count (``--workers``, ``--seed-parallel``): checked before any planning or file."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _check_writable(path: Path, option: str, *, file: bool = False) -> None:
    """Fail before any work if ``path`` (a directory to write into, or with ``file`` a file to write) cannot be
    written: it is of the other kind, a file stands where a folder of it would go, or the folder is read-only."""
    if path.exists() and path.is_dir() == file:
        raise UserError(
            f"{option} {path} is {'a directory' if file else 'a file'}; give a {'file' if file else 'directory'} path"
        )
    nearest = path if path.exists() else next(p for p in path.parents if p.exists())
    if nearest != path and not nearest.is_dir():
        raise UserError(f"{option} {path}: {nearest} is a file, not a directory")
    if not os.access(nearest, os.W_OK):
        raise UserError(f"{option} {path} is not writable ({nearest} is read-only)")


def _train(args: argparse.Namespace) -> int:
    from experiments.grid import make_spec, results_root, train
    from experiments.publish import publish_run
    from experiments.store import ResultsStore
    from replications.core.config import parse_overrides

    spec = make_spec(args.algo, args.impl, args.env, args.seed, args.steps, "custom", parse_overrides(args.set))
    store = ResultsStore(results_root(args.out))
    start, last = time.time(), [0.0]

    def progress(step: int, recent_return: float) -> None:
        if time.time() - last[0] > 10 or step >= spec.steps:
            last[0] = time.time()
            rate = step / max(time.time() - start, 1e-9)
            print(
                f"{spec.algo} {spec.impl} {spec.env} seed {spec.seed}: {step:,}/{spec.steps:,} steps "
                f"({rate:,.0f} steps/s) | mean return of the last 10 episodes {recent_return:,.1f}",
                flush=True,
            )

    row = train(spec, store, progress, force=args.force)
    if row is None:
        print(f"already complete: {store.path(spec)} (use --force to run it again)")
        return 0
    from analysis.scores import score_of

    print(f"done: score {score_of(row, store.root):.2f}; run directory {store.path(spec)}")
    if args.wandb:
        publish_run(store.path(spec), project=args.wandb_project)
    return 0


def _grid(args: argparse.Namespace) -> list:
    """The grid a replicate (or the report on it) covers, from the shared options."""
    from experiments.grid import plan_grid
    from replications.core.config import parse_overrides

    return plan_grid(
        args.algo,
        args.budget,
        seeds=args.seeds,
        envs=_csv(args.envs, "--envs", "CartPole-v1,Pendulum-v1"),
        impls=_csv(args.impl, "--impl", "ours,sb3"),
        overrides=parse_overrides(args.set),
        steps=args.steps,
    )


def _comparison(args: argparse.Namespace):  # noqa: ANN202 (experiments.reporting.comparison.Comparison, imported late)
    """The grid of the shared options and what its report compares, built once (experiments/grid/plan.py)."""
    from experiments.grid import build_comparison
    from replications.core.config import parse_overrides

    return build_comparison(args.algo, args.budget, _grid(args), parse_overrides(args.set), args.steps)


def _replicate(args: argparse.Namespace) -> int:
    from experiments.grid import results_root, run_grid
    from experiments.publish import GridPublisher, publish_report, publish_run
    from experiments.store import ResultsStore

    if not args.no_report:
        _check_writable(Path(args.reports), "--reports")
    comparison = _comparison(args)
    specs = list(comparison.specs)
    to_run = comparison.runs_to_run(args.with_comparators)
    if args.with_comparators:  # our other algorithms' runs that this algorithm's report sets it against
        labels = ", ".join(g.label for g in comparison.comparators)
        print(f"with comparators ({labels}): {len(to_run) - len(specs)} more runs")
    store = ResultsStore(results_root(args.results))
    publisher = GridPublisher(args.wandb_project) if args.wandb else None
    after = None
    if publisher is not None:

        def after(spec, row):  # noqa: ANN001
            publisher.publish(publish_run, store.path(spec))

    _, failures = run_grid(
        to_run,
        store,
        workers=args.workers,
        after_run=after,
        backend=args.backend,
        address=args.address,
        gpus_per_run=args.gpus_per_run,
        seed_parallel=args.seed_parallel,
    )
    if not args.no_report:
        from experiments.reporting import write_report

        out = write_report(comparison, store, Path(args.reports))
        print(f"report: {out / 'index.html'}")
        if publisher is not None:
            publisher.publish(publish_report, out)
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    if publisher is not None:
        publisher.close()
    return 1 if failures else 0


def _report(args: argparse.Namespace) -> int:
    from experiments.grid import results_root, stored_comparisons
    from experiments.reporting import write_overview, write_report
    from experiments.store import ResultsStore

    _check_writable(Path(args.reports), "--reports")
    store = ResultsStore(results_root(args.results))
    # 'all': every grid the store has runs of (each report written before the next is planned)
    comparisons = [_comparison(args)] if args.algo != "all" else stored_comparisons(store, Path(args.reports))
    for comparison in comparisons:
        out = write_report(comparison, store, Path(args.reports))
        print(f"report: {out / 'index.html'}")
    print(f"overview: {write_overview(Path(args.reports))}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from experiments.grid import results_root
    from experiments.publish import publish_report, publish_run
    from experiments.registry import get_algo
    from experiments.reporting import report_dir
    from experiments.store import ResultsStore
    from replications.core.config import parse_overrides

    get_algo(args.algo)  # a name, never a path
    out = report_dir(Path(args.reports), args.algo, args.budget, parse_overrides(args.set), args.steps)
    if not (out / "summary.csv").exists():
        raise UserError(
            f"no report at {out}; write it first with 'rlrepro report {args.algo} --budget {args.budget}' "
            "(with the same --steps and --set)"
        )
    if args.runs:
        store = ResultsStore(results_root(args.results))
        index = store.read_index()
        for path in index[(index.algo == args.algo) & (index.budget == args.budget)].path:
            publish_run(store.root / path, project=args.wandb_project)
    return 0 if publish_report(out, project=args.wandb_project) is not None else 1


def _index(args: argparse.Namespace) -> int:
    from experiments.grid import results_root
    from experiments.store import ResultsStore

    store = ResultsStore(results_root(args.results))
    if args.import_from:
        imported, skipped = store.import_runs(args.import_from)
        for rel in imported:
            print(f"imported {rel}")
        for line in skipped:
            print(f"skipped {line}")
        print(f"{len(imported)} run(s) imported into {store.root}, {len(skipped)} skipped; index: {store.index_path}")
    elif args.rebuild:
        n, skipped = store.rebuild_index()
        for line in skipped:
            print(f"skipped {line}", file=sys.stderr)
        print(f"rebuilt {store.index_path} from {n} complete run directories")
    else:
        from analysis.scores import with_scores

        print(with_scores(store.read_index(), store.root).to_string(index=False))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from experiments.tools.bench import bench

    out = Path(args.out) if args.out else None
    if out is not None:
        _check_writable(out, "--out", file=True)
    os.environ["RLREPRO_DEVICE"] = args.device
    if args.cuda_graph:
        if not args.device.startswith("cuda"):
            raise UserError("--cuda-graph needs --device cuda (a CUDA graph replays GPU kernels)")
        os.environ["RLREPRO_CUDA_GRAPH"] = "1"
    if args.seed_parallel > 1:
        from experiments.tools.bench import bench_seed_parallel

        bench_seed_parallel(args.algo, args.env, args.steps, args.seed_parallel, out)
    else:
        bench(args.algo, args.env, args.steps, out)
    return 0


def _regress(args: argparse.Namespace) -> int:
    from experiments.tools.regress import regress
    from replications.core.config import parse_overrides

    if args.power or args.false_alarms or args.simulate_false_alarms or args.compare_rules:
        return _gate_power(args)
    if args.probe:
        from experiments.tools.regress import probe

        if not (args.steps and args.mutant):
            raise UserError("--probe ENV needs --steps N and --mutant NAME (the bug to separate from)")
        probe(args.algo, args.probe, args.steps, args.mutant, args.seeds, args.workers, args.seed_parallel)
        return 0
    return regress(
        args.algo,
        update_baseline=args.update_baseline,
        workers=args.workers,
        overrides=parse_overrides(args.set),
        mutant=args.mutant,
        seed_parallel=args.seed_parallel,
    )


def _gate_power(args: argparse.Namespace) -> int:
    from experiments.tools import gate_power

    if args.set or args.update_baseline or args.probe:
        raise UserError(
            "--power and the false-alarm measurements run the committed suite: no --set, --probe or --update-baseline"
        )
    if args.power:
        names = [n for n in (args.mutants or "").split(",") if n]
        gate_power.measure_power(args.algo, names, args.workers, args.seed_parallel)
    if args.simulate_false_alarms:
        gate_power.simulate_false_alarms(args.algo, args.simulate_false_alarms)
    if args.false_alarms:
        gate_power.measure_false_alarms(args.algo, args.false_alarms, args.workers, args.seed_parallel)
    if args.compare_rules:
        gate_power.compare_rules(args.algo, args.compare_rules)
    return 0


def _lockstep(args: argparse.Namespace) -> int:
    from experiments.grid import results_root
    from experiments.tools.lockstep import default_updates, lockstep, record
    from replications.core.config import parse_overrides

    updates = args.updates or default_updates(args.algo)
    result = lockstep(
        args.algo,
        args.env,
        updates=updates,
        keep=tuple(args.keep or ()),
        seed=args.seed,
        time_limit=args.time_limit,
        tolerance=args.tolerance,
        overrides=parse_overrides(args.set),
    )
    print(result.line(args.algo, args.env, args.tolerance))
    if not args.no_record:
        settings = {"window": updates, "keep": sorted(args.keep or []), "seed": args.seed}
        settings.update(time_limit=args.time_limit, set=parse_overrides(args.set))
        out = record(result, args.algo, args.env, results_root(args.results), settings, args.tolerance)
        print(f"recorded: {out} (shown in {args.algo}'s reports)")
    return 0 if result.identical else 1


def _fingerprint(args: argparse.Namespace) -> int:
    from experiments.tools.fingerprint import update_golden

    if args.update == args.add_kind:
        raise UserError(
            "fingerprint: pass --update (after a deliberate numerical change: rewrites this CPU kind's goldens "
            "in tests/golden/ and deletes the other kinds') or --add-kind (unchanged code: adds this kind's)"
        )
    algos = tuple(args.algo or ())
    out = update_golden(keep_other_kinds=args.add_kind, algos=algos)
    which = ", ".join(algos) if algos else "every algorithm"
    deleted = "" if args.add_kind else f"; other CPU kinds' goldens of {which} deleted"
    print(f"wrote golden fingerprints of {which} in {out}{deleted}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from experiments.registry import ALGOS
    from replications.core.config import load_paper_config
    from replications.core.envs import SUPPORTED_ENVS

    for name, entry in ALGOS.items():
        cfg = load_paper_config(name)
        budgets = "; ".join(f"{b.name}: {len(b.steps)} envs x {b.seeds} seeds" for b in cfg.budgets.values())
        print(f"{name}: impls {', '.join(entry.impls)} | {budgets}")
    print("envs: " + ", ".join(SUPPORTED_ENVS))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rlrepro", description="Paper replications of deep RL algorithms, cross-checked with SB3.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="one run of ALGO on ENV into the results store")
    t.add_argument("algo")
    t.add_argument("env")
    t.add_argument("--impl", default="ours", help="ours | sb3")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--steps", type=int, required=True, help="total env steps")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a hyperparameter (JSON value)")
    t.add_argument("--out", default=None, help="results root (default: results)")
    t.add_argument("--force", action="store_true", help="re-run even if this exact run is complete")
    t.add_argument("--wandb", action="store_true", help="publish the run to W&B (offline without an API key)")
    t.add_argument("--wandb-project", default="rlrepro")
    t.set_defaults(func=_train)

    r = sub.add_parser("replicate", help="run the paper's grid (skipping complete runs), then the report")
    r.add_argument("algo")
    r.add_argument("--budget", default="paper", help="paper | quick")
    r.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the budget's)")
    r.add_argument("--envs", default=None, help="comma-separated subset of the grid's envs")
    r.add_argument("--impl", default=None, help="comma-separated: ours,sb3 (default: every implementation of ALGO)")
    r.add_argument("--steps", type=int, default=None, help="override every env's step budget")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a hyperparameter (JSON value)")
    r.add_argument("--workers", type=_positive_int, default=os.cpu_count() or 1, help="local backend: worker processes")
    r.add_argument("--backend", default="local", help="local (a process pool here, the default) | ray")
    r.add_argument("--address", default=None, help="ray backend: the cluster's HOST:PORT (default: start one here)")
    r.add_argument("--gpus-per-run", type=float, default=0.0, help="ray backend: GPUs each run asks for")
    r.add_argument(
        "--seed-parallel",
        type=_positive_int,
        default=1,
        metavar="K",
        help="train up to K seeds of one config in one process with batched networks (ours; PPO, TRPO, NPG)",
    )
    r.add_argument("--results", default=None, help="results root (default: results)")
    r.add_argument("--reports", default="reports", help="reports root")
    r.add_argument("--no-report", action="store_true")
    r.add_argument(
        "--with-comparators",
        action="store_true",
        help="also run the runs of our other algorithms that ALGO's report compares with (NPG, AWR, Q-Prop)",
    )
    r.add_argument("--wandb", action="store_true", help="publish runs and report to W&B (offline without a key)")
    r.add_argument("--wandb-project", default="rlrepro")
    r.set_defaults(func=_replicate)

    rep = sub.add_parser("report", help="write reports/ALGO[-BUDGET]/ from the stored runs ('all': every one)")
    rep.add_argument("algo", help="an algorithm, or 'all' for every report and the overview reports/index.html")
    rep.add_argument("--budget", default="paper")
    rep.add_argument("--seeds", type=int, default=None)
    rep.add_argument("--envs", default=None)
    rep.add_argument("--steps", type=int, default=None)
    rep.add_argument("--impl", default=None)
    rep.add_argument("--set", action="append", metavar="KEY=VALUE", help="the overrides the grid was run with")
    rep.add_argument("--results", default=None)
    rep.add_argument("--reports", default="reports")
    rep.set_defaults(func=_report)

    pub = sub.add_parser("publish", help="send a report (and with --runs its runs) to W&B; offline without a key")
    pub.add_argument("algo")
    pub.add_argument("--budget", default="paper")
    pub.add_argument("--steps", type=int, default=None, help="the report's --steps, if it was written with one")
    pub.add_argument("--set", action="append", metavar="KEY=VALUE", help="the report's --set overrides, if any")
    pub.add_argument("--runs", action="store_true", help="also publish every stored run of that budget")
    pub.add_argument("--results", default=None)
    pub.add_argument("--reports", default="reports")
    pub.add_argument("--wandb-project", default="rlrepro")
    pub.set_defaults(func=_publish)

    i = sub.add_parser(
        "index", help="show the results index, rebuild it from the run directories, or import another store's runs"
    )
    i.add_argument("--rebuild", action="store_true")
    i.add_argument(
        "--import",
        dest="import_from",
        metavar="RESULTS_ROOT",
        help="copy the complete runs of another results root (a GPU machine's, a colleague's) into this one",
    )
    i.add_argument("--results", default=None)
    i.set_defaults(func=_index)

    b = sub.add_parser("bench", help="env steps/s of ours vs SB3 in one process, same hyperparameters")
    b.add_argument("algo", nargs="?", default="ppo")
    b.add_argument("--env", default="Hopper-v5")
    b.add_argument("--steps", type=int, default=2048 * 30)
    b.add_argument("--out", default=None, help="also write the result as JSON here")
    b.add_argument(
        "--seed-parallel",
        type=_positive_int,
        default=1,
        metavar="K",
        help="aggregate env steps/s of K seeds batched in one process vs K sequential runs (ours and SB3)",
    )
    b.add_argument(
        "--device",
        default=os.environ.get("RLREPRO_DEVICE", "cpu"),
        help="where the off-policy networks run, ours and SB3's (cpu, cuda; default $RLREPRO_DEVICE or cpu)",
    )
    b.add_argument("--cuda-graph", action="store_true", help="with --device cuda: replay our update as a CUDA graph")
    b.set_defaults(func=_bench)

    g = sub.add_parser("regress", help="is the current code a significant regression against the baseline?")
    g.add_argument("algo")
    g.add_argument("--update-baseline", action="store_true", help="rewrite the baseline after a deliberate change")
    g.add_argument("--workers", type=_positive_int, default=os.cpu_count() or 1)
    g.add_argument("--set", action="append", metavar="KEY=VALUE", help="run the suite with these overrides")
    g.add_argument(
        "--mutant", metavar="NAME", help="plant one bug of experiments/tools/mutants.py (in a copy of the code)"
    )
    g.add_argument(
        "--seed-parallel",
        type=_positive_int,
        default=5,
        metavar="K",
        help="train up to K seeds per process where the algorithm can (PPO, TRPO, NPG; default 5: a suite's "
        "seeds, as the committed baselines were made)",
    )
    g.add_argument("--probe", metavar="ENV", help="measure how fast ENV separates the code from --mutant")
    g.add_argument("--steps", type=_positive_int, help="with --probe: steps per run (scored at 1/8, 1/4, 1/2, 1)")
    g.add_argument("--seeds", type=_positive_int, default=5, help="with --probe: seeds of each (default 5)")
    g.add_argument(
        "--power",
        action="store_true",
        help="the gate's decision with each planted bug ALGO runs (or --mutants): results/regress/power.csv",
    )
    g.add_argument("--mutants", metavar="A,B", help="with --power: only these mutants")
    g.add_argument(
        "--false-alarms",
        type=_positive_int,
        metavar="N",
        help="N gate decisions on disjoint fresh-seed sets of the working code: results/regress/false-alarms.csv",
    )
    g.add_argument(
        "--simulate-false-alarms",
        type=_positive_int,
        metavar="REPS",
        help="REPS simulated decisions from a normal fit of the committed baseline (results/regress/false-alarms.csv)",
    )
    g.add_argument(
        "--compare-rules",
        type=_positive_int,
        metavar="REPS",
        help="each decision rule judged on the measured power rows and REPS simulated null decisions, without new "
        "runs (results/regress/rules.csv)",
    )
    g.set_defaults(func=_regress)

    lk = sub.add_parser(
        "lockstep",
        help="ours and SB3 from the same weights and randomness, compared update by update (exit 0 identical, 1 not)",
    )
    lk.add_argument("algo", help="ppo, trpo, sac or ddpg")
    lk.add_argument("env")
    lk.add_argument(
        "--updates",
        type=_positive_int,
        help="updates to compare: gradient steps off-policy (default 500), iterations on-policy (default 20)",
    )
    lk.add_argument("--keep", action="append", metavar="DIFFERENCE", help="leave this documented difference in place")
    lk.add_argument("--seed", type=int, default=0)
    lk.add_argument(
        "--time-limit", type=_positive_int, help="truncate episodes at this many steps (both; default: the env's)"
    )
    lk.add_argument("--tolerance", type=float, default=1e-4, help="largest relative difference that agrees")
    lk.add_argument("--set", action="append", metavar="KEY=VALUE", help="config overrides, for both")
    lk.add_argument("--results", help="results root whose lockstep/ folder keeps the record (default results)")
    lk.add_argument("--no-record", action="store_true", help="print the result only")
    lk.set_defaults(func=_lockstep)

    f = sub.add_parser("fingerprint", help="rewrite the golden fingerprints after a deliberate numerical change")
    f.add_argument("--update", action="store_true", help="after a deliberate change: this CPU kind's, others deleted")
    f.add_argument("--add-kind", action="store_true", help="unchanged code: add this CPU kind's goldens")
    f.add_argument(
        "--algo", action="append", metavar="ALGO", help="only this algorithm's goldens (repeatable; default all)"
    )
    f.set_defaults(func=_fingerprint)

    ls = sub.add_parser("list", help="algorithms, implementations, budgets and envs")
    ls.set_defaults(func=_list)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"rlrepro: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "rlrepro: interrupted; finished runs are kept, unfinished ones resume from their last checkpoint next time",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
