"""The reporting room: what a report compares (comparison.py: the ``Comparison`` type, built by the planning
room, experiments/grid/plan.py); which runs share one protocol (protocol.py); and the report pages, the
overview and the README's status, written from the store (write.py, over analysis/report.py). It draws the
run ids it is given and never imports the algorithms."""

from experiments.reporting.comparison import Comparison
from experiments.reporting.write import report_dir, write_overview, write_report

__all__ = ["Comparison", "report_dir", "write_overview", "write_report"]
