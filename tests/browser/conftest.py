"""Browser tests: Debian's chromium driven by Playwright (never a downloaded browser), axe-core
for accessibility, and screenshots under test-output/screenshots/ to look at."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe

# Playwright's sync API runs an event loop; Django must allow ORM calls from the test thread.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
DESKTOP = {"viewport": {"width": 1366, "height": 900}}
TABLET = {"viewport": {"width": 820, "height": 1180}, "has_touch": True}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (apt-get install chromium; .ci/run does it).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


class Page:
    """A page plus what the test should check on every screen: console errors and axe."""

    def __init__(self, page: object, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.console_errors: list[str] = []
        page.on("console", self._console)  # type: ignore[attr-defined]
        page.on("pageerror", lambda e: self.console_errors.append(str(e)))  # type: ignore[attr-defined]
        # A page's own 400/404/410 status is often the point of a test; a failed script, style
        # sheet or image never is.
        page.on(  # type: ignore[attr-defined]
            "response",
            lambda r: (
                r.status >= 400
                and r.request.resource_type != "document"
                and self.console_errors.append(f"{r.status} {r.url}")
            ),
        )

    def _console(self, message: object) -> None:
        text = message.text  # type: ignore[attr-defined]
        if message.type == "error" and not text.startswith("Failed to load resource"):  # type: ignore[attr-defined]
            self.console_errors.append(text)

    def goto(self, path: str) -> object:
        return self.page.goto(self.base_url + path)  # type: ignore[attr-defined]

    def check(self, name: str) -> None:
        """Screenshot, then axe: no serious or critical violation, no console error."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]
        results = Axe().run(self.page)
        bad = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
        assert not bad, f"{name}: " + "; ".join(
            f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes)" for v in bad
        )
        assert not self.console_errors, f"{name}: console errors {self.console_errors}"


def _page(browser: object, live_server: object, options: dict) -> Iterator[Page]:
    context = browser.new_context(**options)  # type: ignore[attr-defined]
    page = context.new_page()
    yield Page(page, live_server.url)  # type: ignore[attr-defined]
    context.close()


@pytest.fixture
def phone(browser, live_server) -> Iterator[Page]:
    yield from _page(browser, live_server, PHONE)


@pytest.fixture
def desktop(browser, live_server) -> Iterator[Page]:
    yield from _page(browser, live_server, DESKTOP)


@pytest.fixture
def tablet(browser, live_server) -> Iterator[Page]:
    yield from _page(browser, live_server, TABLET)
