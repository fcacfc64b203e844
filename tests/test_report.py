import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.report import ReportInput, build_report
from analysis.scoring import last_n_training_episodes, learning_curve
from analysis.stats import bootstrap_ci


def test_score_is_the_mean_of_the_last_100_training_episodes():
    ep = pd.DataFrame({"step": np.arange(1, 151), "return": np.arange(150.0), "length": 1})
    assert last_n_training_episodes(ep, 100) == pytest.approx(np.arange(50.0, 150.0).mean())
    assert np.isnan(last_n_training_episodes(ep.iloc[:0], 100))


def test_learning_curve_uses_episodes_finished_by_each_step():
    ep = pd.DataFrame({"step": [10, 20, 30], "return": [1.0, 2.0, 6.0], "length": 10})
    np.testing.assert_allclose(learning_curve(ep, np.array([5, 10, 25, 30]), window=2), [np.nan, 1.0, 1.5, 4.0])


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    x = np.array([1.0, 4.0, 2.0, 8.0, 5.0])
    lo, hi = bootstrap_ci(x, seed=0)
    assert (lo, hi) == bootstrap_ci(x, seed=0)
    assert lo < x.mean() < hi and lo >= x.min() and hi <= x.max()
    assert np.isnan(bootstrap_ci(np.array([1.0]))[0])


def synthetic_runs(root, levels: dict[str, float], env: str = "Hopper-v5") -> pd.DataFrame:
    """Three seeds per impl, each with 50 episodes rising by 10 from ``level + seed``."""
    rows = []
    for impl, level in levels.items():
        for seed in range(3):
            path = f"runs/{impl}{seed}"
            (root / path).mkdir(parents=True)
            ret = level + seed + np.linspace(0, 10, 50)
            pd.DataFrame({"step": np.arange(1, 51) * 20, "return": ret, "length": 20}).to_csv(
                root / path / "episodes.csv", index=False
            )
            rows.append(
                {
                    "env": env,
                    "impl": impl,
                    "seed": seed,
                    "steps": 1000,
                    "score": ret[-100:].mean(),
                    "n_episodes": 50,
                    "sps": 1.0,
                    "wall_s": 1.0,
                    "commit": "abc",
                    "dirty": False,
                    "cpu": "x",
                    "run_id": f"{impl}{seed}",
                    "path": path,
                }
            )
    return pd.DataFrame(rows)


def test_report_from_synthetic_runs(tmp_path):
    inp = ReportInput(
        "ppo",
        "paper",
        "A paper",
        "last 100",
        ["Hopper-v5"],
        synthetic_runs(tmp_path, {"ours": 100.0, "sb3": 50.0}),
        tmp_path,
        {
            "Hopper": {
                "value": 2330.0,
                "source": "PPO paper",
                "table_or_figure": "Fig. 3",
                "env_version": "v1",
                "metric": "m",
                "how_read": "approx (figure)",
            }
        },
    )
    summary = build_report(inp, tmp_path / "out")
    ours = summary[summary.impl == "ours"].iloc[0]
    assert ours.verdict == "better" and ours.paper_value == 2330.0 and ours.n_seeds == 3
    assert (tmp_path / "out" / "curves_Hopper-v5.png").exists()
    assert "ours against SB3 on 1 env with both: better on 1" in (tmp_path / "out" / "summary.md").read_text()
    build_report(inp, tmp_path / "again")  # every figure and table is seeded: the same bytes again
    for name in ("curves_Hopper-v5.png", "profile_SB3.png", "summary.csv", "iqm.csv", "aggregate.csv"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


def test_report_against_several_of_our_algorithms(tmp_path):
    """AWR's report: ours against our PPO (the summary's verdict) and our SAC, each in comparisons.csv."""
    runs = synthetic_runs(tmp_path, {"ours": 100.0, "ppo": 50.0, "sac": 300.0})
    for path in runs[runs.impl != "ppo"].path:  # PPO is scored on training episodes: it has no evaluations
        pd.DataFrame({"step": [500, 1000], "episode": 0, "return": [1.0, 2.0]}).to_csv(
            tmp_path / path / "evaluations.csv", index=False
        )
    reference = {"value": 3405.0, "source": "AWR", "table_or_figure": "T1", "env_version": "v2", "how_read": "exact"}
    inp = ReportInput(
        "awr",
        "paper",
        "A paper",
        "last eval",
        ["Hopper-v5"],
        runs,
        tmp_path,
        {"Hopper": {**reference, "metric": "final return"}},
        baselines=[("ppo", "our PPO at AWR's settings"), ("sac", "our SAC")],
        curves="evaluation",
    )
    summary = build_report(inp, tmp_path / "out")
    assert summary.impl.tolist() == ["ours", "ppo", "sac"]
    assert (tmp_path / "out" / "profile_our_PPO_at_AWR_s_settings.png").exists()  # a label's quote is not a name
    assert summary.set_index("impl").verdict.to_dict() == {"ours": "better", "ppo": "n/a", "sac": "n/a"}
    assert summary.set_index("impl").paper_value.to_dict() == pytest.approx(  # AWR's number is not PPO's
        {"ours": 3405.0, "ppo": float("nan"), "sac": float("nan")}, nan_ok=True
    )
    versus = pd.read_csv(tmp_path / "out" / "comparisons.csv")
    ppo = "our PPO at AWR's settings"
    assert versus.set_index("baseline").verdict.to_dict() == {ppo: "better", "our SAC": "worse"}
    assert versus.set_index("baseline").baseline_mean.to_dict() == pytest.approx({ppo: 56.0, "our SAC": 306.0})
    md = (tmp_path / "out" / "summary.md").read_text()
    assert f"ours against {ppo} on 1 env: better on 1" in md and "| Hopper-v5 | ours | our SAC | 3 | 3 |" in md
    assert "Missing from this report" not in md  # a complete grid has no such line
    assert (tmp_path / "out" / "curves_Hopper-v5.png").exists()  # evaluation curves beside PPO's training curve


def trpo_on_hopper(runs: pd.DataFrame, root, **kwargs) -> ReportInput:
    """A paper-budget TRPO report on Hopper-v5 of ``runs`` (no primary reference row)."""
    return ReportInput("trpo", "paper", "A paper", "last 100", ["Hopper-v5"], runs, root, {}, **kwargs)


def test_report_equivalence_and_ours_with_the_baselines_settings(tmp_path):
    """Seeds 103, 104, 105 against SB3's 105, 106, 107 on Hopper (random policy: 31.1): Welch's test finds no
    difference (p 0.07), and the 90% CI of the difference, -2 +- 2.132 sqrt(2/3), lies inside the margin of 10%
    of 106 - 31.1: 'equivalent'. An extra pair compares ours run with the baseline's settings against it too."""
    runs = synthetic_runs(tmp_path, {"ours": 98.0, "sb3": 100.0, "ours-matched": 100.2})  # means 104, 106, 105.2
    inp = trpo_on_hopper(
        runs,
        tmp_path,
        baselines=[("sb3", "SB3"), ("ours-matched", "ours with SB3's settings")],
        extra_pairs=[("ours-matched", "ours with SB3's settings", "sb3")],
    )
    summary = build_report(inp, tmp_path / "out")
    assert summary.impl.tolist() == ["ours", "sb3", "ours-matched"]
    versus = pd.read_csv(tmp_path / "out" / "comparisons.csv", keep_default_na=False, na_values=[""])
    assert versus[["ours", "baseline"]].values.tolist() == [["ours", "SB3"], ["ours with SB3's settings", "SB3"]]
    assert versus.verdict.tolist() == ["equivalent", "equivalent"]
    assert versus.p_welch[0] == pytest.approx(0.0705, abs=1e-3)
    assert versus.margin.tolist() == pytest.approx([0.1 * (106 - 31.089252740042202)] * 2)
    assert versus.diff_low[0] == pytest.approx(-2 - 2.1318 * np.sqrt(2 / 3), abs=1e-3)
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "ours against SB3 on 1 env: equivalent on 1" in md
    assert "ours with SB3's settings against SB3 on 1 env: equivalent on 1" in md
    # with a margin of 1% the same runs are inconclusive, and the seeds it would take are given
    narrow = ReportInput(**{**inp.__dict__, "margin_fraction": 0.01})
    build_report(narrow, tmp_path / "narrow")
    versus = pd.read_csv(tmp_path / "narrow" / "comparisons.csv", keep_default_na=False, na_values=[""])
    assert versus.verdict[0] == "inconclusive"
    assert int(versus.seeds_needed[0]) > 3 and int(versus.seeds_to_detect[0]) > 3


def test_aggregate_iqm_and_probability_of_improvement():
    from analysis.aggregate import improvement_over_sb3, per_env_iqm

    rows = [
        {"env": e, "impl": impl, "seed": s, "score": base + (50 if impl == "ours" else 0) + s}
        for e, base in (("A", 0.0), ("B", 100.0))
        for impl in ("ours", "sb3")
        for s in range(4)
    ]
    runs = pd.DataFrame(rows)
    iqm = per_env_iqm(runs, ["A", "B"])
    row = iqm[(iqm.env == "A") & (iqm.impl == "sb3")].iloc[0]
    assert row.iqm == pytest.approx(1.5) and row.iqm_low <= 1.5 <= row.iqm_high  # IQM of 0,1,2,3 = mean of 1,2
    poi = improvement_over_sb3(runs, ["A", "B"])
    assert poi["p"] == 1.0 and poi["envs"] == 2 and poi["runs"] == 4
    again = improvement_over_sb3(runs, ["A", "B"])
    assert again == poi  # seeded


def test_normalised_scores_and_aggregates():
    from analysis.aggregate import aggregate_table, normalized_scores

    runs = pd.DataFrame(
        [
            {"env": e, "impl": "ours", "seed": s, "score": v}
            for e, vals in (("A", [10.0, 20.0, 30.0]), ("B", [0.0, 5.0, 10.0]))
            for s, v in enumerate(vals)
        ]
    )
    norm = normalized_scores(runs, ["A", "B", "C"], ["ours"], high={"A": 30.0, "B": 10.0}, low={"A": 10.0, "B": 0.0})
    np.testing.assert_allclose(norm["ours"], [[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]])  # C has no reference: left out
    table = aggregate_table(norm, "paper")
    mean = table[table.metric == "mean"].iloc[0]
    assert mean.value == pytest.approx(0.5) and mean.ci_low <= 0.5 <= mean.ci_high and mean.envs == 2
    gap = table[table.metric == "optimality_gap"].iloc[0]
    assert gap.value == pytest.approx(0.5)  # mean shortfall below 1


def test_last_evaluation_score():
    from analysis.scoring import score

    ev = pd.DataFrame({"step": [5, 5, 10, 10], "episode": [0, 1, 0, 1], "return": [1.0, 3.0, 10.0, 20.0], "length": 3})
    assert score(pd.DataFrame(), {"metric": "last_evaluation"}, ev) == 15.0
    assert np.isnan(score(pd.DataFrame(), {"metric": "last_evaluation"}, None))


def test_evaluation_curve_holds_the_latest_evaluation_mean():
    from analysis.scoring import evaluation_curve

    ev = pd.DataFrame({"step": [10, 10, 20, 20], "episode": [0, 1, 0, 1], "return": [1.0, 3.0, 5.0, 7.0]})
    np.testing.assert_allclose(evaluation_curve(ev, np.array([5, 10, 15, 20, 25])), [np.nan, 2.0, 2.0, 6.0, 6.0])
    assert np.isnan(evaluation_curve(pd.DataFrame(), np.array([1, 2]))).all()


def test_bootstrap_cis_are_reproducible_whatever_the_global_rng_state():
    from analysis.aggregate import per_env_iqm

    runs = pd.DataFrame({"env": ["A"] * 5, "impl": ["ours"] * 5, "seed": range(5), "score": [1.0, 4.0, 2.0, 8.0, 3.0]})
    first = per_env_iqm(runs, ["A"])
    np.random.rand(7)  # anything else drawing from NumPy's global RNG in between
    pd.testing.assert_frame_equal(per_env_iqm(runs, ["A"]), first)


def test_trpo_grid_includes_ours_at_sb3_contribs_settings():
    """TRPO's config asks for Fisher-vector products on every 5th sample, which sb3-contrib cannot do; its
    grid with SB3 also runs ours with the whole batch (reference.sb3_settings), once per seed; never for PPO,
    nor for ours alone (make regress)."""
    from experiments.grid import plan_grid

    assert len(plan_grid("trpo", "paper")) == 7 * 6 * 3  # the paper budget: 6 seeds of ours, SB3, ours at SB3's
    grid = plan_grid("trpo", "paper", seeds=3)
    ours = [s for s in grid if s.impl == "ours"]
    assert len(grid) == 63 and len(ours) == 42
    assert sorted(s.hyperparameters["fisher_subsample"] for s in ours) == [1] * 21 + [5] * 21
    assert len({s.run_id for s in grid}) == 63
    assert len(plan_grid("trpo", "paper", seeds=3, impls=["sb3"])) == 21
    assert len(plan_grid("trpo", "paper", seeds=3, impls=["ours"])) == 21
    # already SB3's setting: no duplicates
    again = plan_grid("trpo", "paper", seeds=3, overrides={"fisher_subsample": 1})
    assert len(again) == 42 and len({s.run_id for s in again}) == 42
    assert len(plan_grid("ppo", "paper")) == 42


def test_pair_tally_counts_only_envs_with_a_verdict_and_names_holms_changes():
    from analysis.report import pair_tally

    versus = pd.DataFrame(
        {
            "ours": "ours",
            "baseline": "SB3",
            "verdict": ["equivalent", "n/a", "worse", "worse"],
            "verdict_holm": ["inconclusive", "n/a", "worse", "inconclusive"],
        }
    )
    assert pair_tally(versus, "ours", "SB3") == (
        "ours against SB3 on 3 envs: equivalent on 1, worse on 2 "
        "(with Holm's correction across the 3: worse on 1, inconclusive on 2)"
    )
    versus["verdict_holm"] = versus.verdict
    assert pair_tally(versus, "ours", "SB3") == "ours against SB3 on 3 envs: equivalent on 1, worse on 2"


def test_summary_names_the_missing_runs(tmp_path):
    """A grid with holes says so in summary.md (which the README quotes), not only in index.html."""
    missing = [f"sac Hopper-v5 seed {i}: not run yet" for i in range(8)]
    inp = ReportInput(
        "awr",
        "paper",
        "A paper",
        "last 100",
        ["Hopper-v5"],
        synthetic_runs(tmp_path, {"ours": 100.0, "sb3": 50.0}),
        tmp_path,
        {},
        missing=missing,
    )
    build_report(inp, tmp_path / "out")
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "Missing from this report: 8 run(s) of the grid (sac Hopper-v5 seed 0: not run yet;" in md
    assert "seed 5: not run yet; ...); all in index.html." in md and "seed 6" not in md
    assert "sac Hopper-v5 seed 7" in (tmp_path / "out" / "index.html").read_text()


def test_comparators_of_a_config_and_their_bad_entries():
    from experiments.reporting.comparison import Comparator, comparators
    from replications.core.errors import UserError

    assert comparators({"compare_algo": "trpo", "compare_overrides": {"horizon": 5000}}) == [
        Comparator("trpo", "trpo", {"horizon": 5000}, "our TRPO")
    ]
    (per_env,) = comparators(
        {
            "compare_algo": {
                "algo": "trpo",
                "overrides": {"max_kl": 0.02},
                "env_overrides": {"Swimmer-v5": {"max_kl": 0.05}},
            }
        }
    )
    assert per_env.overrides_for("Swimmer-v5") == {"max_kl": 0.05} and per_env.overrides_for("Hopper-v5") == {
        "max_kl": 0.02
    }
    assert [c.key for c in comparators({"compare_algo": ["ppo", "trpo", {"algo": "trpo", "key": "t2"}]})] == [
        "ppo",
        "trpo",
        "t2",
    ]
    with pytest.raises(UserError, match="needs 'algo'; allowed keys: algo, overrides, env_overrides, label, key"):
        comparators({"compare_algo": [{"algo": "trpo", "override": {}}]})
    with pytest.raises(UserError, match=r"env_overrides: env -> \{field: value\}"):
        comparators({"compare_algo": [{"algo": "trpo", "env_overrides": {"Swimmer-v5": 0.05}}]})
    with pytest.raises(UserError, match="two entries share a key"):
        comparators({"compare_algo": ["trpo", {"algo": "trpo"}]})


def test_a_runs_device_is_read_from_its_meta():
    from experiments.reporting.write import where_it_ran

    assert where_it_ran({"gpu": "NVIDIA H100 80GB HBM3"}) == "cpu"  # stored before the device was recorded
    assert where_it_ran({"device": "cpu", "gpu": "NVIDIA H100 80GB HBM3"}) == "cpu"  # a GPU machine's CPU
    gpu = {"device": "cuda", "gpu": "NVIDIA H100 80GB HBM3", "cuda_graph": True}
    assert where_it_ran(gpu) == "cuda (NVIDIA H100 80GB HBM3, CUDA graph)"
    assert where_it_ran({**gpu, "cuda_graph": False}) == "cuda (NVIDIA H100 80GB HBM3)"


def test_vectorised_aggregate_metrics_equal_rliables():
    from rliable import metrics

    from analysis.stats import improvement, iqm, mean_of_means, median_of_means, optimality_gap

    rng = np.random.default_rng(3)
    for runs, tasks in ((5, 3), (4, 1), (7, 4)):
        x, y = rng.normal(0.5, 0.4, (runs, tasks)), rng.normal(0.6, 0.4, (runs, tasks)).round(1)
        y[0] = x[0].round(1)  # ties count half
        cols = lambda m: [m[:, t] for t in range(m.shape[1])]  # noqa: E731
        assert iqm(cols(x)) == pytest.approx(metrics.aggregate_iqm(x))
        assert mean_of_means(cols(x)) == pytest.approx(metrics.aggregate_mean(x))
        assert median_of_means(cols(x)) == pytest.approx(metrics.aggregate_median(x))
        assert optimality_gap(cols(x)) == pytest.approx(metrics.aggregate_optimality_gap(x))
        assert improvement(cols(x.round(1)), cols(y)) == pytest.approx(
            metrics.probability_of_improvement(x.round(1), y)
        )
        # vectorised: a leading resample axis gives each resample's own value
        stacked = [np.stack([c, c[::-1] * 2]) for c in cols(x)]
        np.testing.assert_allclose(iqm(stacked), [metrics.aggregate_iqm(x), metrics.aggregate_iqm(2 * x)])


def test_stratified_bootstrap_resamples_each_task_apart():
    from analysis.stats import mean_of_means, stratified_bootstrap

    # task A's seeds all score 1 and task B's all 3: resampling within tasks can never move the mean of means
    point, lo, hi = stratified_bootstrap([[np.ones(4), np.full(4, 3.0)]], mean_of_means)
    assert point == lo == hi == 2.0
    # one task: the CI of the mean is scipy's percentile bootstrap of the mean, and inside the data's range
    x = np.array([1.0, 4.0, 2.0, 8.0, 3.0])
    point, lo, hi = stratified_bootstrap([[x]], mean_of_means)
    assert point == pytest.approx(3.6) and 1.0 <= lo < 3.6 < hi <= 8.0
    assert stratified_bootstrap([[x]], mean_of_means) == (point, lo, hi)  # seeded


def test_readme_status_table_is_generated_from_each_report(tmp_path):
    """The README's verdict matrix comes from the reports' status.json (runs held and missing, one cell per
    comparison and env); a corrupt status file is a one-line error naming it, and the README is left as it was."""
    from experiments.tools.readme import update_readme
    from replications.core.errors import UserError

    missing = [f"ours Hopper-v5 seed {i}: not run yet" for i in (3, 4)]
    runs = synthetic_runs(tmp_path, {"ours": 100.0, "sb3": 50.0})
    inp = ReportInput("sac", "crosscheck", "A paper", "last eval", ["Hopper-v5"], runs, tmp_path, {}, missing=missing)
    build_report(inp, tmp_path / "reports" / "sac-crosscheck")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- status -->\nstale row\n<!-- /status -->\nend\n")
    assert update_readme(readme, tmp_path / "reports") == ["status"]
    text = readme.read_text()
    assert "stale row" not in text and text.startswith("intro\n<!-- status -->\nLegend: = equivalent")
    assert text.endswith("end\n") and "| report | comparison | runs (missing, set apart) | Hopper |" in text
    from experiments.reporting.write import _cell

    cell = {
        "verdict": "inconclusive",
        "verdict_holm": "worse",
        "ours": 1.0,
        "baseline": 2500.0,
        "seeds_needed": ">1000",
    }
    assert _cell(cell) == "? 1 / 2,500 n>1000 (Holm ▼)" and _cell({**cell, "seeds_needed": "14"}).endswith(
        "n=14 (Holm ▼)"
    )
    row = next(line for line in text.splitlines() if line.startswith("| [SAC"))
    assert (
        row == "| [SAC (crosscheck budget)](reports/sac-crosscheck/summary.md) | ours vs SB3 | 6 (2, 0) | ▲ 106 / 56 |"
    )
    (tmp_path / "reports" / "sac-crosscheck" / "status.json").write_text('{"title": "x"')
    with pytest.raises(UserError, match=r"sac-crosscheck/status.json is not readable .*'rlrepro report all'"):
        update_readme(readme, tmp_path / "reports")
    assert readme.read_text() == text


def test_a_run_of_another_protocol_is_set_apart_and_named(tmp_path):
    """One run of the grid trained on a GPU with CUDA-graph replay and one with other library versions, the
    rest on the CPU: the report pools the CPU runs only and names the two with what differs."""
    from experiments.reporting.write import one_protocol

    runs = synthetic_runs(tmp_path, {"ours": 100.0, "sb3": 50.0})
    runs["algo"] = "sac"
    packages = {"torch": "2.13.0+cpu", "numpy": "2.4.6"}
    metas = {path: {"commit": "", "packages": packages} for path in runs.path}
    metas["runs/ours0"] = {"commit": "", "packages": packages, "device": "cuda", "cuda_graph": True}
    metas["runs/sb32"] = {"commit": "", "packages": {**packages, "torch": "2.11.0"}}
    kept, apart, note, n = one_protocol(runs, metas.__getitem__, {"ours": "ours", "sb3": "SB3"})
    assert n == 2 and sorted(kept.run_id) == ["ours1", "ours2", "sb30", "sb31"]
    assert apart == [
        "1 run(s) with device cuda (CUDA graph) (the grid: cpu): ours Hopper-v5 seed 0",
        "1 run(s) with torch 2.11.0 (the grid: torch 2.13.0+cpu): SB3 Hopper-v5 seed 2",
    ]
    assert note.startswith("pooled: device cpu; numpy 2.4.6, torch 2.13.0+cpu; ")
    inp = ReportInput(
        "sac", "crosscheck", "A paper", "last", ["Hopper-v5"], kept, tmp_path, {}, set_apart=apart, n_set_apart=n
    )
    summary = build_report(inp, tmp_path / "out")
    assert summary.n_seeds.tolist() == [2, 2]
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "Set apart, not pooled: 2 run(s) made under another protocol" in md and "SB3 Hopper-v5 seed 2" in md


def test_fingerprints_split_only_where_both_are_known():
    from experiments.reporting.protocol import Protocol, compatible, fingerprint_at, split

    a, b = (("GenuineIntel", "aaa"),), (("GenuineIntel", "bbb"), ("AuthenticAMD-AVX512", "ccc"))
    assert compatible(a, None) and compatible(a, (("AuthenticAMD-AVX512", "ccc"),)) and not compatible(a, b)
    libs = (("torch", "2.13.0+cpu"),)
    runs = [("ppo", Protocol("cpu", libs, a)), ("ppo", Protocol("cpu", libs, a)), ("ppo", Protocol("cpu", libs, b))]
    runs += [("ppo", Protocol("cpu", libs, None)), ("trpo", Protocol("cpu", libs, b))]  # another algorithm's own
    main, apart = split(runs)
    assert main["ppo"].fingerprint == a and main["trpo"].fingerprint == b and apart == [2]
    # the committed goldens are read from git at a commit; a commit this repository does not hold has none
    assert fingerprint_at("HEAD", "ppo") and fingerprint_at("0" * 40, "ppo") is None


def test_reference_metrics_by_hand():
    """Two seeds' evaluation curves at steps 10, 20, 30 (two episodes each): the mean of the last k evaluations
    per seed, the last evaluation, and the maximum over steps of the seed-mean curve, computed by hand."""
    from analysis.references import max_seed_mean_curve, per_seed_value

    a = pd.DataFrame({"step": [10, 10, 20, 20, 30, 30], "return": [1.0, 3.0, 10.0, 10.0, 4.0, 6.0]})  # 2, 10, 5
    b = pd.DataFrame({"step": [10, 10, 20, 20, 30, 30], "return": [0.0, 0.0, 2.0, 4.0, 9.0, 9.0]})  # 0, 3, 9
    ev = lambda t: lambda: t  # noqa: E731
    assert per_seed_value("mean_last_k_evaluations", 2, ev(None), ev(a)) == pytest.approx(7.5)
    assert per_seed_value("final_evaluation", float("nan"), ev(None), ev(b)) == 9.0
    assert max_seed_mean_curve([a, b]) == pytest.approx(7.0)  # the seed-mean curve: 1, 6.5, 7
    episodes = pd.DataFrame({"step": [5, 9, 14], "return": [1.0, 2.0, 6.0]})
    assert per_seed_value("mean_last_n_training_episodes", 2, ev(episodes), ev(None)) == 4.0


def test_a_reported_number_gets_a_verdict_only_like_for_like(tmp_path):
    """Three rows for Hopper: the config's own settings, metric and budget (a verdict against the number, as a
    fixed value); another implementation's settings (context, with why); a max-over-training statistic (context).
    Ours' seeds score 103, 104, 105 on the last 100 training episodes."""
    from analysis.references import COLUMNS

    runs = synthetic_runs(tmp_path, {"ours": 98.0, "sb3": 98.0})
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        algo="trpo",
        env="Hopper",
        env_version="v2",
        table_or_figure="T",
        budget_steps=1000.0,
        value=104.5,
        implementation="OpenAI Baselines",
        settings="Baselines",
        metric_kind="mean_last_n_training_episodes",
        metric_param=100.0,
        source="S",
    )
    rows = pd.DataFrame(
        [
            row,
            {**row, "settings": "Tianshou's tuned settings", "implementation": "Tianshou"},
            {**row, "metric_kind": "max_seed_mean_evaluation_curve", "metric_param": float("nan")},
        ]
    )
    inp = trpo_on_hopper(
        runs,
        tmp_path,
        reference_rows=rows,
        reference_settings="Baselines",
    )
    build_report(inp, tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "references.csv", keep_default_na=False, na_values=[""])
    assert table.ours.tolist()[:2] == pytest.approx([104.0, 104.0]) and np.isnan(table.ours[2])
    # one-sample: t = (104 - 104.5) / (1 / sqrt(3)), df 2; margin 10% of 104.5 - 31.1 (random): inside it
    assert table.p_welch[0] == pytest.approx(2 * stats.t.sf(0.5 * np.sqrt(3), 2))
    assert table.verdict.tolist() == ["equivalent", "n/a", "n/a"]
    assert table.why_no_verdict[1] == "ran Tianshou's tuned settings, not this config's settings"
    assert table.why_no_verdict[2] == "our runs of this algorithm have no deterministic evaluations"
    status = json.loads((tmp_path / "out" / "status.json").read_text())
    assert [c["comparison"] for c in status["cells"]] == ["ours vs SB3", "ours vs OpenAI Baselines (T)"]


def test_the_reference_table_is_checked_and_every_row_has_a_known_metric_kind(tmp_path):
    from analysis.references import METRIC_KINDS, REFERENCE_CSV, load_references
    from replications.core.errors import UserError

    table = load_references()
    assert set(table.metric_kind) <= set(METRIC_KINDS) and table.implementation.notna().all()
    # the TD3 paper's 'DDPG' column is OpenAI Baselines' DDPG (../shared/references/ correction of 2026-11-30)
    ddpg = table[(table.algo == "ddpg") & table.source.str.contains("'DDPG' column")]
    assert set(ddpg.implementation) == {"OpenAI Baselines DDPG"} and set(ddpg.table_or_figure) == {"Table 1", "Table 2"}
    bad = pd.read_csv(REFERENCE_CSV)
    bad.loc[3, "metric_kind"] = "best_ever"
    bad.to_csv(tmp_path / "r.csv", index=False)
    with pytest.raises(UserError, match=r"r.csv line 5: metric_kind 'best_ever'; allowed: mean_last_n_training_"):
        load_references(tmp_path / "r.csv")


def test_the_reporting_room_draws_given_run_ids_and_never_imports_the_algorithms():
    """Planning (experiments/grid) computes run ids from the algorithms' configs; reporting and the analysis
    only draw what they are given: importing them loads no algorithm, no registry, no SB3."""
    import subprocess
    import sys

    code = (
        "import sys, experiments.reporting, analysis.report, analysis.scores;"
        "algos = {'replications.' + a for a in ('ppo', 'trpo', 'npg', 'sac', 'ddpg', 'awr', 'qprop')};"
        "rooms = ('experiments.registry', 'experiments.grid', 'experiments.baselines', 'stable_baselines3');"
        "print(sorted(m for m in sys.modules if m in algos or m.startswith(rooms)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_training_diagnostics_summarise_each_runs_progress_by_hand(tmp_path):
    """The config's diagnostics (progress.csv columns) per env: the mean over seeds of each run's mean over all
    iterations and over the last quarter, and the seeds' range; a column a run lacks is skipped."""
    from analysis.report import training_diagnostics

    runs = synthetic_runs(tmp_path, {"ours": 100.0, "sb3": 50.0})
    for seed, corr in enumerate(([0.0, 0.1, 0.2, 0.3], [0.4, 0.4, 0.4, 0.8], [0.1, 0.1, 0.1, 0.1])):
        pd.DataFrame({"step": [1, 2, 3, 4], "adv_abar_corr": corr}).to_csv(
            tmp_path / f"runs/ours{seed}/progress.csv", index=False
        )
    inp = ReportInput(
        "qprop", "paper", "A paper", "last 100", ["Hopper-v5"], runs, tmp_path, {},
        diagnostics={"adv_abar_corr": "corr(A, Abar)", "absent": "a column no run has"},
    )  # fmt: skip
    table = training_diagnostics(inp)
    assert table.statistic.tolist() == ["adv_abar_corr"]  # 'absent' skipped; SB3's runs not read
    row = table.iloc[0]
    assert row.seeds == 3 and row["mean"] == pytest.approx((0.15 + 0.5 + 0.1) / 3)
    assert row.mean_last_quarter == pytest.approx((0.3 + 0.8 + 0.1) / 3)  # the last of 4 iterations
    assert (row.seed_min, row.seed_max) == pytest.approx((0.1, 0.5))
    build_report(inp, tmp_path / "out")
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| Hopper-v5 | adv_abar_corr | 3 | 0.25 | 0.4 | 0.1 | 0.5 |" in summary
    assert "- adv_abar_corr: corr(A, Abar)" in summary and (tmp_path / "out" / "diagnostics.csv").exists()
    assert "Training diagnostics of ours" in (tmp_path / "out" / "index.html").read_text()
