"""The API docs page in a real browser (Debian chromium via Playwright): Swagger UI loads from our
own static files and draws every operation under the strict CSP (script-src 'self', no eval),
with no console error, CSP violations included."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_swagger_ui_draws_the_schema_under_our_csp(live_server):
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian chromium is not installed (apt-get install chromium; .ci/run does it).")
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page()
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "request",
            lambda r: (
                not r.url.startswith(live_server.url)
                and not r.url.startswith("data:")
                and outside.append(r.url)
            ),
        )
        page.goto(f"{live_server.url}/api/docs/")
        page.wait_for_selector(".opblock-tag-section", timeout=15_000)
        tags = page.locator(".opblock-tag").all_inner_texts()
        browser.close()
    assert {"patients", "sessions", "flags", "exports", "fhir"} <= {t.split("\n")[0].strip() for t in tags}
    assert not errors, errors
    assert not outside, outside
