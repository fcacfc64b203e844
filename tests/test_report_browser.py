"""The HTML reports render in a real browser (headless Chromium), checked by a screenshot."""

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def generated_reports(committed_reports):
    """The reports, written afresh from the committed runs by ``rlrepro report all`` (tests/conftest.py)."""
    out, reports = committed_reports
    assert out.returncode == 0, out.stderr
    return reports


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
@pytest.mark.parametrize("page", ["ppo-quick/index.html", "index.html"])
def test_reports_render_in_headless_chromium(tmp_path, generated_reports, page):
    report = generated_reports / page
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            # tall enough that the overview's first figures sit below its matrix (one row per comparison)
            "--window-size=1200,6000",
            f"--screenshot={shot}",
            report.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    rgb = np.asarray(Image.open(shot).convert("RGB"), dtype=int)
    assert rgb.shape == (6000, 1200, 3)
    text = (rgb.sum(-1) < 200).mean()  # dark pixels: the text and table rules
    assert 0.002 < text < 0.5, text
    # the learning-curve figures loaded: a broken image shows an icon, not matplotlib's tab:blue lines
    blue = (np.abs(rgb - np.array([31, 119, 180])).sum(-1) < 60).sum()
    assert blue > 300, blue
