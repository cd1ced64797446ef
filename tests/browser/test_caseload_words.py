"""Issue 16, caseload, words and audit, in a real browser (desktop and a 390 px phone, axe on
every screen): the caseload's usual level and verdict, the low-alliance reason, cards on a phone
without sideways scrolling, undo of an acknowledgement, and the audit trail filtered by patient."""

from __future__ import annotations

import pytest

from monitoring.models import Flag
from tests.browser.test_dashboards import demo, sign_in  # noqa: F401 - the demo fixture

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_caseload_on_a_phone_is_cards_without_sideways_scrolling(phone, demo):  # noqa: F811
    sign_in(phone, "alice@demo.bordin.test")
    page = phone.page
    assert page.viewport_size["width"] == 390
    wide = page.evaluate("() => document.documentElement.scrollWidth")
    culprits = page.evaluate(
        "() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391)"
        ".slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"
    )
    assert wide <= 390, f"the caseload scrolls sideways ({wide} px): {culprits}"
    card = page.locator("table.caseload tbody tr").first
    assert card.evaluate("r => getComputedStyle(r).display") == "block"
    label = card.locator("td[data-label='Usual level']").evaluate(
        "td => getComputedStyle(td, '::before').content"
    )
    assert label == '"Usual level: "', "each cell of a card names its column"
    phone.check("caseload-phone-cards")


def test_a_low_alliance_keeps_its_patient_in_needs_attention_and_an_acknowledgement_can_be_undone(
    desktop,
    demo,  # noqa: F811
):
    low = (
        Flag.objects.filter(kind="low_alliance", acknowledgement="")
        .select_related("episode__patient")
        .first()
    )
    assert low is not None, "the demo has a persistently low alliance"
    label = low.episode.patient.label
    sign_in(desktop, low.episode.therapist.email)
    page = desktop.page
    row = page.locator(f"tr[data-patient='{label}']")
    assert "Alliance stayed low" in row.inner_text()
    assert int(row.get_attribute("data-priority")) < 9
    desktop.check("caseload-low-alliance")

    row.locator("th a").click()
    headline = page.locator(".figure-card").first.inner_text()
    assert "Usual level (total)" in headline and "Long-run level" in headline
    card = page.locator(f"#flag-{low.code}")
    assert "Alliance has stayed low" in card.inner_text()
    card.get_by_label("Discussed with patient").check()
    card.get_by_role("button", name="Save").click()
    page.wait_for_selector(".messages")
    card = page.locator(f"#flag-{low.code}")
    assert "Discussed with patient" in card.inner_text()
    desktop.check("patient-acknowledged-with-undo")
    card.get_by_role("button", name="Undo acknowledgement").click()
    page.wait_for_selector(".messages")
    assert "Acknowledgement undone" in page.locator(".messages").inner_text()
    assert page.locator(f"#flag-{low.code} .ack-form").count() == 1
    low.refresh_from_db()
    assert low.acknowledgement == ""


def test_who_looked_at_a_patient(desktop, demo):  # noqa: F811
    sign_in(desktop, "alice@demo.bordin.test")
    page = desktop.page
    first = page.locator("tr[data-priority]").first
    label = first.get_attribute("data-patient")
    first.locator("th a").click()
    page.wait_for_selector("h1")
    page.context.clear_cookies()
    sign_in(desktop, "admin@demo.bordin.test")
    desktop.goto("/clinic/demo/audit/")
    page.get_by_label("Patient (label or record number)").fill(label)
    page.get_by_role("button", name="Show").click()
    page.wait_for_selector("table.audit")
    rows = page.locator("table.audit tbody tr").all_inner_texts()
    assert rows and any("alice@demo.bordin.test" in r and label in r for r in rows)
    assert all(label in r for r in rows)
    desktop.check("audit-by-patient")
