"""Issue 16, item 7, in a real browser (desktop and a 390 px phone, axe on every screen): the
demo's supervisor opens the Team page from the header, reads their two therapists' figures (a
table on the desktop, cards on a phone, without sideways scrolling), opens a therapist's caseload
and a patient read-only; the clinic admin assigns a therapist on the Staff page and sees every
therapist on the Team page."""

from __future__ import annotations

import pytest

from tests.browser.test_dashboards import demo, sign_in  # noqa: F401 - the demo fixture

pytestmark = pytest.mark.django_db(transaction=True)
SUPERVISOR = "supervisor@demo.bordin.test"


def test_a_supervisor_reads_the_team_page_and_a_patient_read_only(desktop, demo):  # noqa: F811
    sign_in(desktop, SUPERVISOR)
    page = desktop.page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Team").click()
    page.wait_for_selector("table.team")
    assert page.locator("h1").inner_text() == "Team"
    names = page.locator("table.team tbody tr").evaluate_all("rows => rows.map(r => r.dataset.therapist)")
    assert names == ["Alice Hartmann", "Bob Okafor"], "the assigned therapists, by surname"
    assert page.locator("table.team tfoot tr").get_attribute("data-therapist") == "Whole team"
    text = page.locator("main").inner_text()
    assert "never to rank colleagues" in text and "Dropped out" in text
    assert "Own rating vs the patient's" in text, "Alice rates her sessions too"
    alice = page.locator("tr[data-therapist='Alice Hartmann'] td[data-label=\"Own rating vs the patient's\"]")
    assert "higher" in alice.inner_text() or "lower" in alice.inner_text()
    desktop.check("team-supervisor-desktop")

    page.get_by_label("Period").select_option("quarter")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/team/demo/?period=quarter")
    assert "Last 13 weeks (a quarter)" in page.locator("main").inner_text()

    page.get_by_role("link", name="Bob Okafor").click()
    page.wait_for_selector("tr[data-patient]")
    assert page.get_by_label("Therapist").evaluate("s => s.selectedOptions[0].text") == "Bob Okafor"
    page.locator("tr[data-patient] th a").first.click()
    page.wait_for_selector("#read-only")
    assert "read-only" in page.locator("#read-only").inner_text()
    assert (
        page.locator(".ack-form").count() == 0 and page.get_by_role("button", name="Send form").count() == 0
    )
    assert page.get_by_role("link", name="Report for the health record (PDF)").count() == 0
    desktop.check("patient-supervisor-read-only")


def test_the_team_page_on_a_phone_is_cards_without_sideways_scrolling(phone, demo):  # noqa: F811
    sign_in(phone, SUPERVISOR)
    phone.goto("/team/demo/")
    page = phone.page
    page.wait_for_selector("table.team")
    wide = page.evaluate("() => document.documentElement.scrollWidth")
    assert wide <= 390, f"the team page scrolls sideways ({wide} px)"
    card = page.locator("table.team tbody tr").first
    assert card.evaluate("r => getComputedStyle(r).display") == "block"
    label = card.locator("td[data-label='Forms in']").evaluate(
        "td => getComputedStyle(td, '::before').content"
    )
    assert label == '"Forms in: "'
    phone.check("team-supervisor-phone")


def test_the_clinic_admin_assigns_a_therapist_and_sees_every_therapist(desktop, demo):  # noqa: F811
    sign_in(desktop, "admin@demo.bordin.test")
    desktop.goto("/clinic/demo/staff/")
    page = desktop.page
    page.get_by_text("Therapists Sam Supervisor supervises").click()
    page.get_by_role("checkbox", name="Carol Nguyen").check()
    desktop.check("admin-staff-supervision")
    page.locator("details.supervise").get_by_role("button", name="Save").click()
    page.wait_for_selector(".messages")
    assert (
        "Sam Supervisor now supervises Alice Hartmann, Carol Nguyen, Bob Okafor"
        in page.locator(".messages").inner_text()
    )
    assert "Supervises: Alice Hartmann, Carol Nguyen, Bob Okafor" in page.locator("main").inner_text()

    desktop.goto("/team/demo/")
    names = page.locator("table.team tbody tr").evaluate_all("rows => rows.map(r => r.dataset.therapist)")
    assert names == ["Alice Hartmann", "Carol Nguyen", "Bob Okafor"], "by surname: Hartmann, Nguyen, Okafor"
    desktop.check("team-admin-desktop")
