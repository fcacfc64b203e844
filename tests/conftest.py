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
