"""The patient's optional message on a phone, and the therapist reading it and planning
appointments (issue 16, items 4 and 5), with axe and screenshots."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from clinics.models import AppointmentSchedule, Patient
from monitoring.collection import sessions
from monitoring.collection.invitations import invitation_create
from monitoring.collection.responses import submission_create
from monitoring.models import PatientMessage
from tests.browser.test_dashboards import demo, sign_in  # noqa: F401 - the demo clinic fixture
from tests.browser.test_patient_form import answer_all

pytestmark = pytest.mark.django_db(transaction=True)
WORDS = "The homework felt like too much this week.\nCan we talk about it first next time?"


def test_a_patient_writes_to_their_therapist_on_a_phone(phone, session, alice):
    session.date = timezone.localdate()
    session.save(update_fields=["date"])
    _, token = invitation_create(session=session, created_by=alice)
    phone.goto(f"/f/{token}/")
    page = phone.page
    box = page.get_by_label("Anything you would like your therapist to know?")
    assert box.get_attribute("maxlength") == "1000"
    assert "At most 1000 characters" in page.locator("#message-hint").inner_text()
    answer_all(page, "4")
    box.fill(WORDS)
    box.scroll_into_view_if_needed()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # no sideways scrolling on the phone
    phone.check("form-phone-message")
    page.get_by_role("button", name="Send my answers").click()
    page.wait_for_url("**/done/**")
    assert PatientMessage.objects.get(session=session).text == WORDS


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_the_therapist_reads_the_message_and_plans_appointments(request, device, demo):  # noqa: F811
    p = request.getfixturevalue(device)
    sign_in(p, "alice@demo.bordin.test")
    page = p.page
    page.locator("tr[data-priority] th a").first.click()
    code = page.url.rstrip("/").rsplit("/", 1)[-1]
    patient = Patient.objects.get(code=code)
    Patient.objects.filter(pk=patient.pk).update(contact_email="patient@example.org")
    sent = sessions.form_send(patient=patient, user=None)  # today's form, answered with a message
    symptoms = {code: dict.fromkeys(range(1, n + 1), 0) for code, n in (("phq9", 9), ("gad7", 7))}
    submission_create(
        invitation=sent.invitation,
        answers=dict.fromkeys(range(1, 13), 4),
        measures={code: symptoms[code] for code in sent.invitation.measures},
        message=WORDS,
    )
    session = sent.session
    page.reload()
    row = page.locator("tr.message-row")
    assert f"with the form of session {session.number}" in row.inner_text()
    assert "The homework felt like too much" in row.inner_text()
    start = date.today() + timedelta(days=3)
    if not page.locator("#repeat").is_visible():
        page.locator("#appointments summary").click()
    page.select_option("#form-channel", "email")
    page.select_option("#repeat", "weekly")
    page.fill("#starts-on", start.isoformat())
    page.fill("#appointment-time", "14:30")
    page.locator("#appointments").scroll_into_view_if_needed()
    p.check(f"appointments-form-{device}")
    page.locator("#appointments").get_by_role("button", name="Save").click()
    page.wait_for_url("**#appointments")
    assert "Saved. Each appointment's session is made" in page.locator(".messages").inner_text()
    assert "Every week" in page.locator("#appointments").inner_text()
    assert AppointmentSchedule.objects.get(patient=patient).starts_on == start
    p.check(f"appointments-saved-{device}")
    p.goto(f"/sessions/{session.code}/")
    assert "The homework felt like too much" in page.locator("#patient-message").inner_text()
    p.check(f"session-message-{device}")
