"""Regenerate the README's results tables from the generated reports (never typed by hand).

Each ``reports/<name>/summary.md`` replaces the text between ``<!-- results:<name> -->`` and
``<!-- /results:<name> -->`` in README.md, and the status table (one row per report: runs held and missing,
the verdict matrix, from each report's ``status.json``) replaces the text between ``<!-- status -->`` and
``<!-- /status -->``.
"""

from __future__ import annotations

import functools
import re
import sys
from pathlib import Path

from replications.core.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
STATUS = re.compile(r"(<!-- status -->\n).*?(<!-- /status -->)", re.S)


def status_table(reports: Path, readme_dir: Path) -> str:
    """The verdict matrix (experiments.reporting.matrix_markdown): one row per report and comparison, one column
    per env, each report linked to its summary (relative to the README)."""
    from experiments.reporting.write import matrix_markdown

    return matrix_markdown(reports, readme_dir)


def _between(m: re.Match[str], body: str) -> str:
    """A generated section's markers around its new body."""
    return m.group(1) + body + m.group(2)


def update_readme(readme: Path = ROOT / "README.md", reports: Path = ROOT / "reports") -> list[str]:
    from experiments.tools.bench import write_bench_summary
    from experiments.tools.gate_power import write_summary

    if (ROOT / "results" / "bench").exists() and reports == ROOT / "reports":
        write_bench_summary(ROOT / "results" / "bench", reports / "bench" / "summary.md")
    if (ROOT / "results" / "regress").exists() and reports == ROOT / "reports":
        write_summary(ROOT / "results" / "regress", reports / "regress" / "summary.md")
    text = readme.read_text()
    done = []
    for summary in sorted(reports.glob("*/summary.md")):
        name = summary.parent.name
        pattern = re.compile(rf"(<!-- results:{re.escape(name)} -->\n).*?(<!-- /results:{re.escape(name)} -->)", re.S)
        if pattern.search(text):
            body = summary.read_text().strip() + f"\n\n(from `reports/{name}/`; regenerate with `make readme`)\n"
            text = pattern.sub(functools.partial(_between, body=body), text)
            done.append(name)
    if STATUS.search(text):
        table = status_table(reports, readme.parent) + "\n"
        text = STATUS.sub(lambda m: m.group(1) + table + m.group(2), text)
        done.append("status")
    readme.write_text(text)
    return done


if __name__ == "__main__":
    try:
        names = update_readme()
    except UserError as err:
        sys.exit(f"error: {err}")
    print(f"README tables updated from: {', '.join(names) or 'no reports with markers'}")
    sys.exit(0)
