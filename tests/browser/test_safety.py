"""Symptoms beside the alliance, end to end in a real browser: the patient answers the alliance,
the PHQ-9 and the GAD-7 on one phone form; a risk answer shows the clinic's crisis text at once and
again after sending; the therapist finds the safety alert at the top of the caseload, records the
follow-up on the patient page, and the alert leaves the caseload."""

from __future__ import annotations

import pytest

from monitoring.collection.invitations import invitation_create
from monitoring.models import Response, SafetyAlert
from tests.auth import totp_code, totp_enable
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def measuring(clinic_a):
    clinic_a.outcome_measures = ["phq9", "gad7"]
    clinic_a.crisis_text = "Call the Clinic A duty line on 0123 456 789, or 112 in an emergency."
    clinic_a.save()
    return clinic_a


def fill(page, prefix: str, count: int, value: str) -> None:
    for n in range(1, count + 1):
        page.locator(f'input[name="{prefix}{n}"][value="{value}"]').check()


def sign_in(p, user, secret: str) -> None:
    p.goto("/accounts/login/")
    p.page.fill("#id_login", user.email)
    p.page.fill("#id_password", PASSWORD)
    p.page.get_by_role("button", name="Sign in").click()
    p.page.wait_for_url(p.base_url + "/accounts/2fa/authenticate/")
    p.page.fill("#id_code", totp_code(secret))
    p.page.get_by_role("button", name="Sign in").click()
    p.page.wait_for_url(p.base_url + "/")


def test_a_risk_answer_reaches_the_therapist_and_stays_until_followed_up(
    phone, desktop, measuring, session, alice
):
    secret = totp_enable(alice)
    _, token = invitation_create(session=session, created_by=alice)
    phone.goto(f"/f/{token}/")
    page = phone.page
    assert page.locator("h2#section-phq9").is_visible() and page.locator("h2#section-gad7").is_visible()
    assert page.locator("[data-progress]").inner_text() == "0"
    fill(page, "item_", 12, "4")
    fill(page, "phq9_", 8, "1")
    fill(page, "gad7_", 7, "1")
    assert page.locator("#crisis").is_hidden()
    page.locator('input[name="phq9_9"][value="1"]').check()
    assert page.locator("#crisis").is_visible(), "the crisis text shows as soon as item 9 is above 0"
    assert "0123 456 789" in page.locator("#crisis").inner_text()
    assert page.locator("[data-progress]").inner_text() == "28"
    phone.check("form-phone-symptoms-risk")
    page.get_by_role("button", name="Send my answers").click()
    page.wait_for_url("**/done/**")
    assert "0123 456 789" in page.locator("[role=alert]").inner_text()
    phone.check("form-phone-thanks-crisis")
    assert sorted(Response.objects.values_list("measure", flat=True)) == ["alliance", "gad7", "phq9"]
    alert = SafetyAlert.objects.get()
    assert alert.notified_at is not None  # e-mailed in the same request, not queued

    sign_in(desktop, alice, secret)
    screen = desktop.page
    box = screen.locator("section.safety-alert")
    assert "reported thoughts of self-harm" in box.inner_text() and "P.A." in box.inner_text()
    first = screen.locator("tr[data-priority]").first
    assert first.get_attribute("data-priority") == "0" and "Safety" in first.inner_text()
    desktop.check("caseload-safety")
    box.get_by_role("link", name="P.A.").click()
    screen.wait_for_url("**/patients/**")
    assert "Several days" in screen.locator("#safety").inner_text()
    desktop.check("patient-safety-open")
    screen.get_by_label("Contacted the patient").check()
    screen.get_by_label("Note (what was assessed and agreed)").fill(
        "Phoned the same day; safety plan agreed."
    )
    screen.get_by_role("button", name="Record follow-up").click()
    screen.wait_for_selector("text=Follow-up recorded")
    screen.locator("#safety summary").click()  # the history is folded away once nothing is open
    assert "Phoned the same day" in screen.locator("#safety").inner_text()
    desktop.check("patient-safety-followed-up")
    alert.refresh_from_db()
    assert alert.followed_up_by == alice and alert.follow_up == "contacted"
    desktop.goto("/")
    assert screen.locator("section.safety-alert").count() == 0


def test_symptoms_before_the_session_on_a_link_of_their_own(phone, measuring, episode, alice):
    from datetime import date

    from clinics.models import Session

    measuring.outcome_timing = "before_session"
    measuring.save()
    upcoming = Session.objects.create(episode=episode, number=1, date=date.today())
    _, token = invitation_create(session=upcoming, created_by=alice, part="before")
    phone.goto(f"/f/{token}/")
    page = phone.page
    assert page.locator("h1").inner_text() == "Before your session"
    assert page.locator('input[name="item_1"]').count() == 0
    fill(page, "phq9_", 9, "0")
    fill(page, "gad7_", 6, "2")
    page.get_by_role("button", name="Send my answers").click()
    page.wait_for_selector("#error-summary")
    assert "One statement still needs an answer" in page.locator("#error-summary").inner_text()
    assert page.locator('input[name="phq9_3"][value="0"]').is_checked()  # the answers are kept
    phone.check("form-phone-before-error")
    assert not Response.objects.exists()
    page.locator('input[name="gad7_7"][value="3"]').check()
    page.get_by_role("button", name="Send my answers").click()
    page.wait_for_url("**/done/**")
    assert page.locator("[role=alert]").count() == 0  # no risk answer, no crisis text
    assert sorted(Response.objects.values_list("measure", flat=True)) == ["gad7", "phq9"]
