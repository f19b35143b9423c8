"""A real headless browser for report pages: Debian's chromium + chromedriver, driven by Selenium. Offline on
purpose: every host resolves to nothing and the proxy is a closed port, so a page that needs the network
fails visibly. `open_page` returns what a test checks: console messages, the page's own DOM facts, and a
screenshot written where asked."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def need_browser() -> None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed (pip install selenium): the page cannot be opened in a browser")
    if not CHROMIUM or not DRIVER:
        pytest.skip("chromium / chromedriver not found (apt-get install -y chromium chromium-driver)")


@contextmanager
def browser(width: int = 1400, height: int = 2400):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    need_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=http://127.0.0.1:9",
        "--no-first-run",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(driver, page: Path, screenshot: Path) -> dict:
    driver.get(page.resolve().as_uri())
    facts = driver.execute_script(
        """
        const imgs = Array.from(document.images);
        return {
          title: document.title,
          tables: document.querySelectorAll('table').length,
          rows: document.querySelectorAll('tbody tr').length,
          images: imgs.length,
          images_loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
          image_sources: imgs.map(i => i.src.slice(0, 22)),
          resources: performance.getEntriesByType('resource').map(e => e.name),
          external: Array.from(document.querySelectorAll('[src],[href]'))
            .map(e => e.getAttribute('src') || e.getAttribute('href'))
            .filter(u => !u.startsWith('data:') && !u.startsWith('#')),
          cards: document.querySelectorAll('.prompt').length,
          text: document.body.innerText,
        };
        """
    )
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(screenshot))
    facts["console"] = driver.get_log("browser")
    return facts


def choose_suite(driver, value: str) -> dict:
    """Pick a suite in the page's filter; what is visible after."""
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element("id", "suite")).select_by_value(value)
    return driver.execute_script(
        """
        const cards = Array.from(document.querySelectorAll('.prompt'));
        const shown = cards.filter(c => !c.hidden && c.offsetParent !== null);
        return {shown: shown.map(c => c.getAttribute('data-suite')), label: document.getElementById('shown').textContent};
        """
    )
