"""The API's Swagger UI, served from our own static files, works under our CSP."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_swagger_ui_draws_the_schema_under_our_csp(desktop):
    outside: list[str] = []
    desktop.page.on(
        "request",
        lambda r: (
            not r.url.startswith(desktop.base_url) and not r.url.startswith("data:") and outside.append(r.url)
        ),
    )
    desktop.goto("/api/docs/")
    desktop.page.wait_for_selector(".opblock-tag-section", timeout=15_000)
    tags = desktop.page.locator(".opblock-tag").all_inner_texts()
    assert {"patients", "sessions", "flags", "exports", "fhir"} <= {t.split("\n")[0].strip() for t in tags}
    assert not desktop.console_errors, desktop.console_errors
    assert not outside, outside
