"""The reporting room: what a report compares, built once from the config (comparison.py); which runs share
one protocol (protocol.py); and the report pages, the overview and the README's status, written from the
store (write.py, over analysis/report.py)."""

from experiments.reporting.comparison import Comparison, build_comparison
from experiments.reporting.write import report_dir, write_all, write_overview, write_report

__all__ = ["Comparison", "build_comparison", "report_dir", "write_all", "write_overview", "write_report"]
