"""Regenerate the README's results tables from the generated reports (never typed by hand).

Each ``reports/<name>/summary.md`` replaces the text between ``<!-- results:<name> -->`` and
``<!-- /results:<name> -->`` in README.md.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def update_readme(readme: Path = ROOT / "README.md", reports: Path = ROOT / "reports") -> list[str]:
    from experiments.bench import write_bench_summary

    if (ROOT / "results" / "bench").exists() and reports == ROOT / "reports":
        write_bench_summary(ROOT / "results" / "bench", reports / "bench" / "summary.md")
    text = readme.read_text()
    done = []
    for summary in sorted(reports.glob("*/summary.md")):
        name = summary.parent.name
        pattern = re.compile(rf"(<!-- results:{re.escape(name)} -->\n).*?(<!-- /results:{re.escape(name)} -->)", re.S)
        if pattern.search(text):
            body = summary.read_text().strip() + f"\n\n(from `reports/{name}/`; regenerate with `make readme`)\n"
            text = pattern.sub(lambda m, b=body: m.group(1) + b + m.group(2), text)
            done.append(name)
    readme.write_text(text)
    return done


if __name__ == "__main__":
    names = update_readme()
    print(f"README tables updated from: {', '.join(names) or 'no reports with markers'}")
    sys.exit(0)
