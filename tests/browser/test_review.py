"""'Looking back together' (issue 16, item 4) and the digest settings (item 6) in a real browser."""

from __future__ import annotations

import pytest

from tests.browser.test_dashboards import demo, sign_in  # noqa: F401 - the demo clinic fixture

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("device", ["desktop", "tablet"])
def test_a_therapist_looks_back_together_with_a_patient(request, device, demo):  # noqa: F811
    p = request.getfixturevalue(device)
    sign_in(p, "alice@demo.bordin.test")
    page = p.page
    page.locator("tr[data-priority] th a").first.click()
    patient_url = page.url
    page.get_by_role("link", name="Look back together").click()
    page.wait_for_url("**/review/")
    page.locator(".js-plotly-plot").first.wait_for()
    assert page.locator("h1").inner_text() == "Looking back together"
    assert page.locator("nav[aria-label='Main']").count() == 0  # full screen: no site navigation
    headings = page.locator("h2").all_inner_texts()
    assert headings[0] == "How our sessions felt to you" and headings[-1] == "Things we could talk about"
    names = page.evaluate("() => document.querySelector('[data-chart=chart-alliance]').data.map(t => t.name)")
    assert names == [
        "All together",
        "What we are working towards",
        "How we are working on it",
        "How we get on",
    ]
    text = page.locator("main").inner_text().lower()
    assert "you answered after" in text
    assert not any(word in text for word in ("rupture", "flag", "threshold", "baseline", "deviation"))
    p.check(f"review-{device}")
    page.get_by_role("link", name="Close").click()
    page.wait_for_url(patient_url)


def test_a_therapist_chooses_how_often_the_digest_comes(desktop, demo):  # noqa: F811
    sign_in(desktop, "alice@demo.bordin.test")
    page = desktop.page
    page.get_by_role("link", name="Notifications").click()
    assert page.locator("h1").inner_text() == "Notifications"
    assert page.get_by_label("Once a day, when something is new").is_checked()  # the default
    desktop.check("notifications")
    page.get_by_label("Once a week, when something is new").check()
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector(".messages")
    assert "Saved." in page.locator(".messages").inner_text()
    assert page.get_by_label("Once a week, when something is new").is_checked()
