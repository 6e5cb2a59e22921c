"""A real browser for the tests of pages: Debian's Chromium (/usr/bin/chromium, installed by
deploy/bootstrap.sh) driven by Playwright for Python; never `playwright install`. Screenshots
go to .local/screenshots/ of the work tree."""
from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[4] / ".local" / "screenshots"
# desktop and phone width (a common phone's CSS pixels)
VIEWPORTS = (("desktop", {"width": 1280, "height": 900}), ("phone", {"width": 390, "height": 844}))
