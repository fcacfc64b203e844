import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture
def rlrepro_cmd():
    """The installed console script (falls back to ``python -m experiments.cli``)."""
    exe = Path(sys.executable).parent / "rlrepro"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "experiments.cli"]


@pytest.fixture(scope="session")
def committed_reports(tmp_path_factory):
    """``rlrepro report all`` run once on the committed results: (its completed process, the reports directory)."""
    import subprocess

    out = tmp_path_factory.mktemp("reports")
    exe = Path(sys.executable).parent / "rlrepro"
    cmd = [str(exe), "report", "all", "--results", str(ROOT / "results"), "--reports", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600), out
