"""The browser side of the web tests (test_web.py, test_web_edge_cases.py): Debian's
Chromium driven by Playwright, and a page that collects its console errors. conftest.py's
`browser` and `open_page` fixtures wrap `launch_browser` and `page_opener`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TOKEN = "web-s3cret"
SHOTS = os.environ.get("LENSDB_WEB_SHOTS")  # also copy screenshots here (for the README)


def launch_browser() -> Iterator:
    """The headless Chromium (a module-scoped fixture yields from this)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Page:
    """A page with its console errors collected."""

    def __init__(self, browser, url: str, shots: Path):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000},
                                     accept_downloads=True)
        self.errors: list[str] = []
        self.shots = shots
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url)

    def shot(self, name: str, full: bool = False) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full)
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(SHOTS) / path.name)
        return path

    def query(self, text: str) -> None:
        self.page.fill("#q", text)
        self.page.press("#q", "Enter")


def page_opener(browser, shots: Path) -> Iterator[Callable[[str], Page]]:
    """open_(url) -> a Page whose screenshots go to `shots`; every page closed at the end."""
    pages: list[Page] = []

    def open_(url: str) -> Page:
        pages.append(Page(browser, url, shots))
        return pages[-1]

    yield open_
    for p in pages:
        p.page.close()


def loaded(page: Page) -> None:
    page.page.wait_for_selector("#videos td", timeout=30_000)
    page.page.wait_for_function("document.querySelector('#tl-info').textContent.includes('frames')",
                                timeout=30_000)
