"""The patient's form in a real browser on a phone: fill, submit, every kind of bad link."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.collection.invitations import invitation_create, invitation_revoke
from monitoring.models import Invitation, Response

pytestmark = pytest.mark.django_db(transaction=True)


def answer_all(page, value: str = "4", skip: tuple[int, ...] = ()) -> None:
    for n in range(1, 13):
        if n not in skip:
            page.locator(f'input[name="item_{n}"][value="{value}"]').check()


def test_a_patient_fills_in_the_form_on_a_phone(phone, session, alice):
    session.date = timezone.localdate()  # a session of today (an earlier one says "most recent")
    session.save(update_fields=["date"])
    _, token = invitation_create(session=session, created_by=alice)
    phone.goto(f"/f/{token}/")
    page = phone.page
    assert page.locator("h1").inner_text() == "How was today's session?"
    assert page.locator("[data-progress]").inner_text() == "0"
    phone.check("form-phone-empty")
    answer_all(page, "4")
    assert page.locator("[data-progress]").inner_text() == "12"
    # Touch targets are at least 44 px high (WCAG 2.5.5, enhanced; 2.5.8 needs 24).
    assert page.locator("label.option").first.bounding_box()["height"] >= 44
    phone.check("form-phone-filled")
    page.get_by_role("button", name="Send my answers").click()
    page.wait_for_url("**/done/**")
    assert "Your answers have been received" in page.content()
    phone.check("form-phone-thanks")
    assert Response.objects.get(session=session).answers.count() == 12


def test_a_missing_answer_is_shown_next_to_the_statement(phone, session, alice):
    _, token = invitation_create(session=session, created_by=alice)
    phone.goto(f"/f/{token}/")
    page = phone.page
    answer_all(page, "3", skip=(7,))
    page.get_by_role("button", name="Send my answers").click()
    page.wait_for_selector("#error-summary")
    assert "One statement still needs an answer" in page.locator("#error-summary").inner_text()
    assert page.locator("#item-7-error").is_visible()
    assert page.locator('input[name="item_3"][value="3"]').is_checked()  # other answers kept
    phone.check("form-phone-error")
    assert not Response.objects.exists()
    page.locator('#item-7 input[value="5"]').check()
    page.get_by_role("button", name="Send my answers").click()
    page.wait_for_url("**/done/**")
    assert Response.objects.get().answers.get(item__number=7).value == 5


def test_a_double_click_stores_one_response(phone, session, alice):
    _, token = invitation_create(session=session, created_by=alice)
    phone.goto(f"/f/{token}/")
    answer_all(phone.page, "5")
    phone.page.get_by_role("button", name="Send my answers").dblclick()
    phone.page.wait_for_url("**/done/**")
    phone.page.go_back()
    phone.page.reload()
    assert Response.objects.count() == 1


def test_the_form_in_german(phone, session, alice, patient):
    patient.language = "de"
    patient.save()
    _, token = invitation_create(session=session, created_by=alice)
    phone.goto(f"/f/{token}/")
    assert phone.page.locator("html").get_attribute("lang") == "de"
    assert phone.page.get_by_role("button", name="Antworten senden").is_visible()
    phone.check("form-phone-german")


@pytest.mark.parametrize("reason", ["unknown", "expired", "revoked", "used"])
def test_each_kind_of_bad_link_gets_a_calm_page(phone, session, alice, reason):
    invitation, token = invitation_create(session=session, created_by=alice)
    if reason == "unknown":
        token = "Z" * 43
    elif reason == "expired":
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    elif reason == "revoked":
        invitation_revoke(invitation=invitation)
    else:
        Invitation.objects.filter(pk=invitation.pk).update(used_at=timezone.now())
    response = phone.goto(f"/f/{token}/")
    assert response.status == (404 if reason == "unknown" else 410)
    assert phone.page.locator("h1").is_visible()
    assert not phone.page.locator("form.alliance-form").count()
    phone.check(f"link-{reason}")
