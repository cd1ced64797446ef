"""'Send form' from the patient page, the tablet picker and a late form (issue 16, item 5)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from clinics.models import Patient, Session
from tests.browser.test_dashboards import demo, sign_in  # noqa: F401 - the demo clinic fixture

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_a_therapist_sends_the_form_in_one_step(request, device, demo):  # noqa: F811
    p = request.getfixturevalue(device)
    sign_in(p, "alice@demo.bordin.test")
    page = p.page
    page.locator("tr[data-priority] th a").first.click()
    code = page.url.rstrip("/").rsplit("/", 1)[-1]
    Patient.objects.filter(code=code).update(contact_email="", contact_phone="")
    page.reload()
    p.check(f"send-form-patient-{device}")
    page.get_by_role("button", name="Send form", exact=True).click()
    page.wait_for_url("**/sessions/**")
    message = page.locator(".messages .message").inner_text()
    assert "no email address or mobile number on file" in message and "nothing was sent" in message
    link = page.locator("#form-link").input_value()
    assert "/f/" in link
    p.check(f"send-form-no-contact-{device}")
    Patient.objects.filter(code=code).update(contact_email="patient@example.org")
    page.get_by_role("button", name="Send form", exact=True).click()
    page.wait_for_url("**/sessions/**")
    assert "was sent by email" in page.locator(".messages .message").inner_text()
    assert page.locator("#form-link").input_value() == link  # the link already shown still works
    p.check(f"send-form-sent-{device}")
    p.goto("/kiosk/")
    items = page.locator(".kiosk-item").all_inner_texts()
    assert items and "Today" in items[0]
    p.check(f"kiosk-{device}")
    p.goto("/" + link.split("://", 1)[-1].split("/", 1)[1])
    assert page.locator("h1").inner_text() in ("How was today's session?", "After your session")
    p.check(f"send-form-patient-form-{device}")
    # The same link opened days later speaks of the most recent session.
    Session.objects.filter(episode__patient__code=code, date=date.today()).update(
        date=date.today() - timedelta(days=6)
    )
    page.reload()
    assert "most recent session" in page.locator("main").inner_text()
    p.check(f"send-form-late-form-{device}")
