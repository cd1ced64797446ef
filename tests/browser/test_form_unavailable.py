"""Issue 14, item 8, in a real browser: the database fails while the patient's answers are being
stored; the page says so calmly, keeps every choice, and sending again stores them once."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from monitoring.collection import views
from monitoring.collection.invitations import invitation_create
from monitoring.models import Response

pytestmark = pytest.mark.django_db(transaction=True)
CHOSEN = {n: str(1 + n % 5) for n in range(1, 13)}


def test_the_form_keeps_the_answers_when_they_cannot_be_stored(phone, session, alice, monkeypatch):
    _, token = invitation_create(session=session, created_by=alice)
    real, calls = views.submission_create, []

    def database_fails_once(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(**kwargs)

    monkeypatch.setattr(views, "submission_create", database_fails_once)
    phone.goto(f"/f/{token}/")
    page = phone.page
    for n, value in CHOSEN.items():
        page.locator(f'input[name="item_{n}"][value="{value}"]').check()
    page.get_by_role("button", name="Send my answers").click()

    page.wait_for_selector("#unavailable")
    assert "Your answers are not saved yet" in page.locator("#unavailable").inner_text()
    assert all(page.locator(f'input[name="item_{n}"][value="{v}"]').is_checked() for n, v in CHOSEN.items())
    assert page.locator("[data-progress]").inner_text() == "12"
    phone.check("form-phone-unavailable")
    assert not Response.objects.exists()

    page.get_by_role("button", name="Send my answers").click()
    page.wait_for_url("**/done/**")
    assert "Your answers have been received" in page.content()
    assert Response.objects.get(session=session).answers.count() == 12
