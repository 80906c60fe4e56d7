"""Look at a page as a person would: Debian's headless Chromium renders it to a PNG (in a network namespace of its
own, so that the browser reaches nothing: the page must be whole by itself), and Pillow reads the pixels."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from PIL import Image

from buildkit_ops.report.charts import PALETTE


def screenshot(page: Path, png: Path, width: int = 1280, height: int = 2400) -> Image.Image:
    browser = shutil.which("chromium")
    assert browser, "chromium is not installed: lab/host-setup.sh installs it (Debian's chromium package)"
    r = subprocess.run(["unshare", "--net", browser, "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", f"--window-size={width},{height}", f"--screenshot={png}",
                        page.resolve().as_uri()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and png.exists(), r.stderr[-2000:]
    return Image.open(png).convert("RGB")


def colours_drawn(img: Image.Image, min_pixels: int = 30) -> list[str]:
    """The chart palette's colours that cover at least `min_pixels` pixels of the image."""
    counts: dict[tuple[int, int, int], int] = {}
    for c in img.get_flattened_data():
        counts[c] = counts.get(c, 0) + 1
    out = []
    for hexcolour in PALETTE:
        rgb = tuple(int(hexcolour[i:i + 2], 16) for i in (1, 3, 5))
        if counts.get(rgb, 0) >= min_pixels:   # type: ignore[call-overload]
            out.append(hexcolour)
    return out


def ink(img: Image.Image) -> float:
    """The share of pixels that are not white: 0 for a blank page."""
    data = list(img.get_flattened_data())
    return sum(1 for c in data if c != (255, 255, 255)) / len(data)
