"""The report as a person sees it: headless Chromium renders summary.html of a fabricated results
tree (tests/test_report.py's fixture) to a 1280 x 2000 screenshot, and the picture is checked.

Skipped when no Chromium is installed (Debian: `apt-get install -y --no-install-recommends
chromium`; .ci/run installs it). The screenshot stays in the test's tmp_path (printed with -s).
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from test_report import Page, build

BROWSER = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no chromium on PATH (apt-get install chromium)")


def screenshot(page, png, size=(1280, 2000)) -> np.ndarray:
    """A headless Chromium screenshot of the file `page` (root needs --no-sandbox)."""
    command = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--screenshot={png}", f"--window-size={size[0]},{size[1]}", page.resolve().as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and png.exists(), done.stderr[-2000:]
    return np.asarray(Image.open(png).convert("RGB")).astype(int)  # [height, width, 3]


def near_white(pixels: np.ndarray) -> np.ndarray:
    """[..., 3] -> [...]: True where every channel is above 245."""
    return pixels.min(axis=-1) > 245


def colours(pixels: np.ndarray) -> set[tuple[int, int, int]]:
    return set(map(tuple, pixels.reshape(-1, 3)))


def test_report_renders_in_a_browser(tmp_path) -> None:
    out = build(tmp_path, statistics=True)
    parser = Page()
    parser.feed((out / "summary.html").read_text())
    assert parser.images and all(src.startswith("data:image/png;base64,") for src in parser.images)
    image = screenshot(out / "summary.html", tmp_path / "report.png")
    print(f"screenshot: {tmp_path / 'report.png'}")
    assert image.shape == (2000, 1280, 3)
    # The comparison table (below the title and the notes) is drawn: text, borders and shading.
    table = image[150:450]
    assert (~near_white(table)).mean() > 0.03
    assert len(colours(table)) > 50
    assert (227, 244, 225) in colours(image), "the best cell's shading (CSS) is not shown"
    # The embedded plots are decoded and drawn (viridis' yellow end appears in the heatmaps).
    yellow = (image[..., 0] > 200) & (image[..., 1] > 180) & (image[..., 2] < 90)
    assert yellow.mean() > 0.002
    # Nothing is wider than the page: the right margin stays blank.
    assert near_white(image[:, 1240:]).mean() > 0.99
