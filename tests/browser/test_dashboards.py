"""The therapist's and admin's pages in a real browser: caseload, patient charts, flag workflow."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.management import call_command

from monitoring.management.commands.seed_demo import DEMO_PASSWORD, DEMO_TOTP_SECRET
from tests.auth import totp_code

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def demo(db):
    call_command("seed_demo", today=date.today())


def sign_in(p, email: str) -> None:
    """Password, then the authenticator app's code (the demo accounts share one secret)."""
    p.goto("/accounts/login/")
    p.page.fill("#id_login", email)
    p.page.fill("#id_password", DEMO_PASSWORD)
    p.page.get_by_role("button", name="Sign in").click()
    p.page.wait_for_url(p.base_url + "/accounts/2fa/authenticate/")
    p.page.fill("#id_code", totp_code(DEMO_TOTP_SECRET))
    p.page.get_by_role("button", name="Sign in").click()
    p.page.wait_for_url(p.base_url + "/")


def confirm_password(p, shot: str | None = None) -> None:
    """Exports, tokens and staff changes ask for the password again (allauth's re-authentication);
    the request that asked is then carried out."""
    p.page.wait_for_url("**/accounts/reauthenticate/**")
    if shot:
        p.check(shot)
    p.page.fill("#id_password", DEMO_PASSWORD)
    p.page.get_by_role("button", name="Confirm").click()


def priorities(page) -> list[int]:
    return [
        int(x)
        for x in page.locator("tr[data-priority]").evaluate_all("rows => rows.map(r => r.dataset.priority)")
    ]


def test_sign_in_page(desktop):
    desktop.goto("/accounts/login/")
    desktop.check("sign-in")


def test_a_therapist_reviews_the_caseload_opens_a_patient_and_acknowledges_a_flag(desktop, demo):
    sign_in(desktop, "alice@demo.bordin.test")
    page = desktop.page
    assert page.locator("h1").inner_text() == "Caseload"
    order = priorities(page)
    assert order == sorted(order) and order[0] < 9, "most urgent first"
    desktop.check("caseload-desktop")

    first = page.locator("tr[data-priority]").first
    label = first.get_attribute("data-patient")
    first.locator("th a").click()
    page.locator(".js-plotly-plot").nth(2).wait_for()
    traces = page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('[data-chart]')].map("
        "d => [d.dataset.chart, (d.data || []).map(t => t.name)]))"
    )
    assert "Total" in traces["chart-trajectory"]
    assert any("threshold" in name.lower() or "Deviation" in name for name in traces["chart-deviations"])
    assert len(traces["chart-subscales"]) >= 4
    desktop.check("patient-desktop")

    card = page.locator("li.flag:not(.acknowledged)").first
    card.get_by_label("Discussed with patient").check()
    card.get_by_label("Note (optional)").fill("Talked it through at the start of the session")
    card.get_by_role("button", name="Save").click()
    page.wait_for_selector(".messages")
    assert "Talked it through" in page.locator("li.flag.acknowledged").first.inner_text()
    desktop.check("patient-after-acknowledging")

    page.get_by_role("link", name="Caseload").first.click()
    assert page.locator(f'tr[data-patient="{label}"]').count() == 1


def test_the_pages_work_on_a_tablet(tablet, demo):
    sign_in(tablet, "bob@demo.bordin.test")
    tablet.check("caseload-tablet")
    tablet.page.locator("tr[data-priority] th a").first.click()
    tablet.page.locator(".js-plotly-plot").nth(2).wait_for()
    tablet.check("patient-tablet")


def test_an_admin_filters_the_clinic_caseload_by_therapist(desktop, demo):
    sign_in(desktop, "admin@demo.bordin.test")
    page = desktop.page
    everyone = page.locator("tr[data-priority]").count()
    assert everyone >= 38
    page.get_by_label("Therapist").select_option(label="Carol Nguyen")
    page.get_by_role("button", name="Show").click()
    page.wait_for_load_state()
    assert 0 < page.locator("tr[data-priority]").count() < everyone
    desktop.check("caseload-admin-filtered")


def test_the_session_page_and_the_tablet_picker(desktop, demo):
    sign_in(desktop, "carol@demo.bordin.test")
    page = desktop.page
    page.locator("tr[data-priority] th a").first.click()
    page.locator("table.answers tbody tr th a").first.click()
    page.wait_for_selector("h1")
    desktop.check("session-page")
    desktop.goto("/kiosk/")
    desktop.check("tablet-picker")
    desktop.goto("/account/api-tokens/")
    page.get_by_label("What it is for").fill("Health record sync")
    page.get_by_role("button", name="Create token").click()
    assert page.locator("#new-token").input_value().startswith("bdn_")
    desktop.check("api-tokens")
