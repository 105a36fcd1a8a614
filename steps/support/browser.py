"""A real headless Chromium for the console's specs, driven through chromedriver (Selenium).

It can reach nothing but loopback: every host name resolves to nothing except 127.0.0.1,
and Chromium's own background traffic (updates, sync, safe browsing) is switched off.
Screenshots go under the run's output folder (``RBEE_TEST_OUTPUT``), one per page checked.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

__all__ = ["By", "Browser", "output_dir"]

T = TypeVar("T")

CHROMIUM = os.environ.get("RBEE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("RBEE_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = [
    "--headless=new",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox will not start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
    "--metrics-recording-only",
    "--no-pings",
]
# Nothing beyond this machine: names resolve to nothing but loopback (and the queen's own
# address, on a link to a namespace the scenario made: features/split.feature).
RESOLVER_RULES = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1, EXCLUDE localhost"


def output_dir() -> Path:
    """Where a run's screenshots go: ``RBEE_TEST_OUTPUT``, else a folder in the temp dir."""
    path = Path(
        os.environ.get("RBEE_TEST_OUTPUT") or Path(tempfile.gettempdir()) / "rbee-test-output"
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


class Browser:
    """One Chromium for one scenario, on the scenario's queen."""

    def __init__(self, base_url: str, home: Path, scenario: str) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        queen = urlsplit(base_url).hostname or "127.0.0.1"
        rules = (
            RESOLVER_RULES
            if queen in ("127.0.0.1", "localhost")
            else f"{RESOLVER_RULES}, EXCLUDE {queen}"
        )
        for flag in [*FLAGS, rules, f"--user-data-dir={home / 'chromium'}"]:
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not download
        service = Service(executable_path=CHROMEDRIVER, log_output=str(home / "chromedriver.log"))
        self.driver = webdriver.Chrome(options=options, service=service)
        self.base_url = base_url
        self.slug = re.sub(r"[^a-z0-9]+", "-", scenario.lower()).strip("-")[:60]
        self.shots = 0

    def close(self) -> None:
        self.driver.quit()

    def open(self, fragment: str = "") -> None:
        """Load the console (``fragment``: a page, ``#/jobs``), fresh."""
        self.driver.get(f"{self.base_url}/{fragment}")

    def go(self, fragment: str) -> None:
        """Move to another page of the console already loaded, as a click on a link does."""
        self.driver.execute_script("window.location.hash = arguments[0]", fragment)

    def one(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        found = self.all(css)
        return found[0].text if found else ""

    def until(self, probe: Callable[[], T | None], timeout: float, what: str) -> T:
        """Wait until ``probe`` answers something true; the elements it reads may be
        replaced under it as the page re-renders, which counts as not yet."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = probe()
            except (StaleElementReferenceException, WebDriverException) as exc:
                last = exc
            else:
                if last:
                    return last
            time.sleep(0.1)
        self.snap("timed-out")
        raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")

    def snap(self, page: str) -> Path:
        """Save a screenshot of what the browser shows now."""
        self.shots += 1
        path = output_dir() / f"console-{self.slug}-{self.shots:02d}-{page}.png"
        self.driver.save_screenshot(str(path))
        return path

    def errors(self) -> list[str]:
        """What the page's console reported as errors (CSP violations, failed loads,
        uncaught exceptions), since the last call."""
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    def requested_urls(self) -> list[str]:
        """Every URL the page requested, from Chromium's network log."""
        urls = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                urls.append(message["params"]["request"]["url"])
        return urls
