"""The HTML reports render in a real browser (headless Chromium), checked by a screenshot."""

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
@pytest.mark.parametrize("page", ["ppo-quick/index.html", "index.html"])
def test_reports_render_in_headless_chromium(tmp_path, page):
    from pathlib import Path

    report = Path(__file__).resolve().parent.parent / "reports" / page
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
            "--window-size=1200,2400",
            f"--screenshot={shot}",
            report.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    image = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert image.shape == (2400, 1200)
    assert image.std() > 20  # text, tables and figures, not a blank page
    dark = (image < 128).mean()
    assert 0.005 < dark < 0.5
    # the learning-curve images loaded: their plot area is mostly white with coloured lines, so the page
    # has many distinct grey levels beyond text (a broken image shows an icon only)
    assert len(np.unique(image.astype(int))) > 100
