"""Issue 14, finding 1: the staff invitation page as a password oracle, and one clinic's "sign out
everywhere" reaching into another clinic.

An admin of clinic B (erin) invites clinic A's admin (dana), whose address she knows, and holds
the join link (the staff page shows it). The join page must not tell her whether the address has
an account, must not check any password (signing in is allauth's sign-in, with django-axes'
lockout, allauth's rate limits, two-factor and the audit trail), and once dana has joined, B's
"Sign out everywhere" on dana's membership must end dana's access to B only.
"""

from __future__ import annotations

import re

import pytest
from auditlog.models import LogEntry
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.test import Client

from clinics.models import Clinic, Membership, Patient
from clinics.services import staff_invite
from tests.auth import sign_in, totp_code, totp_enable
from tests.conftest import PASSWORD

NEW_PASSWORD = "a-long-and-good-passphrase"


def invite(clinic: Clinic, by: User, email: str, role: str = "therapist") -> str:
    """The path of a new invitation's join link (what the inviting admin is shown)."""
    _, token = staff_invite(clinic=clinic, email=email, role=role, invited_by=by, join_url=lambda t: t)
    return f"/join/{token}/"


def anonymised(page: str, *words: str) -> str:
    """The page without what differs by invitation: the address, the token, the CSRF token."""
    for word in words:
        page = page.replace(word, "WORD")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", page)


def real_sign_in(client: Client, email: str, secret: str, next_url: str, password: str = PASSWORD):
    """allauth's own sign-in: password, then the authenticator code; returns the last response."""
    first = client.post(f"/accounts/login/?next={next_url}", {"login": email, "password": password})
    if first.status_code == 302 and first["Location"].startswith("/accounts/2fa/authenticate/"):
        return client.post("/accounts/2fa/authenticate/", {"code": totp_code(secret)})
    return first


def test_the_join_page_says_nothing_about_whether_the_address_has_an_account(clinic_b, erin, dana):
    known = invite(clinic_b, erin, "dana@a.test")
    unknown = invite(clinic_b, erin, "nobody@x.test")
    known_page = Client().get(known)
    unknown_page = Client().get(unknown)
    assert known_page.status_code == unknown_page.status_code == 200
    known_text = anonymised(known_page.content.decode(), "dana@a.test", known)
    unknown_text = anonymised(unknown_page.content.decode(), "nobody@x.test", unknown)
    assert known_text == unknown_text
    assert "already have a Bordin account" not in known_text.replace("Already", "already") or (
        "/accounts/login/?next=" in known_text  # offered to everyone alike, never as a finding
    )
    assert 'autocomplete="current-password"' not in known_text  # no box for an existing password


def test_the_join_page_checks_no_password_of_an_existing_account(clinic_a, clinic_b, erin, dana):
    """The probe: unlimited guesses on the join page, no lockout, no trail; the right one joined."""
    link = invite(clinic_b, erin, "dana@a.test")
    attacker = Client()
    answers = []
    for guess in [f"guess-number-{n:04d}" for n in range(12)] + [PASSWORD]:
        response = attacker.post(link, {"name": "", "password": guess, "password_again": guess})
        answers.append((response.status_code, response.get("Location")))
    assert len(set(answers)) == 1, "the join page answers a right password differently from a wrong one"
    assert not Membership.objects.filter(user=dana, clinic=clinic_b).exists()
    assert "_auth_user_id" not in attacker.session
    assert User.objects.get(email="dana@a.test").check_password(PASSWORD)  # nothing changed


def test_choosing_a_password_answers_the_same_for_a_new_and_an_existing_address(clinic_b, erin, dana):
    known = invite(clinic_b, erin, "dana@a.test")
    unknown = invite(clinic_b, erin, "nobody@x.test")
    body = {"name": "N. N.", "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
    to_known, to_unknown = Client().post(known, body), Client().post(unknown, body)
    assert to_known.status_code == to_unknown.status_code == 302
    assert to_known["Location"] == f"/accounts/login/?next={known}"
    assert to_unknown["Location"] == f"/accounts/login/?next={unknown}"
    # Both links still show the same page afterwards (neither invitation was used up).
    again = anonymised(Client().get(known).content.decode(), "dana@a.test", known)
    assert again == anonymised(Client().get(unknown).content.decode(), "nobody@x.test", unknown)
    weak = {"password": "12345", "password_again": "12345"}
    refused = [Client().post(link, weak) for link in (known, unknown)]
    assert [r.status_code for r in refused] == [400, 400]
    assert all("too short" in r.content.decode() for r in refused)


def test_an_existing_account_joins_through_the_normal_sign_in(clinic_b, erin, dana):
    secret = totp_enable(dana)
    link = invite(clinic_b, erin, "dana@a.test")
    browser = Client()
    page = browser.get(link).content.decode()
    assert f'href="/accounts/login/?next={link}"' in page
    # Wrong passwords on the sign-in page are counted by django-axes and recorded in the trail.
    for _ in range(2):
        browser.post(f"/accounts/login/?next={link}", {"login": "dana@a.test", "password": "wrong-one-1234"})
    assert AccessAttempt.objects.filter(username="dana@a.test", failures_since_start=2).exists()
    assert LogEntry.objects.filter(object_pk=str(dana.pk), additional_data__event="sign-in failed").exists()
    signed = real_sign_in(browser, "dana@a.test", secret, link)
    assert signed.status_code == 302 and signed["Location"] == link
    page = browser.get(link)
    assert page.status_code == 200 and "Accept" in page.content.decode()
    assert not Membership.objects.filter(user=dana, clinic=clinic_b).exists()  # looking is not joining
    accepted = browser.post(link, {"action": "accept"})
    assert accepted.status_code == 302
    assert Membership.objects.get(user=dana, clinic=clinic_b).is_active
    assert Client().get(link).status_code == 410  # works once


def test_accepting_needs_the_csrf_token(clinic_b, erin, dana):
    link = invite(clinic_b, erin, "dana@a.test")
    client = sign_in(Client(enforce_csrf_checks=True), dana)
    assert client.post(link, {"action": "accept"}).status_code == 403
    assert not Membership.objects.filter(user=dana, clinic=clinic_b).exists()


def test_someone_signed_in_with_another_address_is_told_so(clinic_b, erin, dana, alice):
    link = invite(clinic_b, erin, "dana@a.test")
    client = sign_in(Client(), alice)
    page = client.get(link).content.decode()
    assert "This invitation is for another address" in page
    refused = client.post(link, {"action": "accept"})
    assert refused.status_code == 400
    assert not Membership.objects.filter(clinic=clinic_b, user__in=[alice, dana]).exists()


def test_a_new_colleague_chooses_a_password_then_signs_in_and_accepts(clinic_b, erin):
    link = invite(clinic_b, erin, "nora@b.test")
    client = Client()
    chosen = client.post(link, {"name": "Nora New", "password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert chosen["Location"] == f"/accounts/login/?next={link}"
    nora = User.objects.get(email="nora@b.test")
    assert nora.get_full_name() == "Nora New" and nora.check_password(NEW_PASSWORD)
    signed = client.post(f"/accounts/login/?next={link}", {"login": "nora@b.test", "password": NEW_PASSWORD})
    assert signed.status_code == 302 and signed["Location"] == link  # no authenticator yet
    assert client.post(link, {"action": "accept"}).status_code == 302
    assert Membership.objects.get(user=nora, clinic=clinic_b).role == "therapist"
    # Then two-factor set-up, before any patient data.
    assert client.get("/")["Location"].startswith("/accounts/2fa/totp/activate/")


# --- One clinic's sign-out ---------------------------------------------------------------------


@pytest.fixture
def dana_in_b(dana, clinic_b) -> Membership:
    """Clinic A's admin, who has also joined clinic B as a therapist."""
    return Membership.objects.create(user=dana, clinic=clinic_b, role="therapist")


def test_clinic_bs_sign_out_ends_dana_s_access_to_b_only(clinic_a, clinic_b, dana, erin, dana_in_b, charlie):
    b_patient = Patient.objects.create(clinic=clinic_b, label="B.1", therapist=dana)
    session = sign_in(Client(), dana)
    assert session.get(f"/patients/{b_patient.code}/").status_code == 200
    admin_b = sign_in(Client(), erin)
    done = admin_b.post(f"/clinic/clinic-b/staff/{dana_in_b.code}/sign-out/", follow=True)
    assert "Clinic B" in done.content.decode()
    # Dana's session lives on for clinic A...
    assert session.get("/clinic/clinic-a/staff/").status_code == 200
    me = session.get("/api/v1/me/").json()
    assert [m["clinic"]["name"] for m in me["memberships"]] == ["Clinic A"]
    # ...but opens nothing of clinic B any more, page or API.
    assert session.get(f"/patients/{b_patient.code}/").status_code == 404
    assert session.get(f"/api/v1/patients/{b_patient.code}/").status_code == 404
    # A new sign-in (password and code) opens clinic B again.
    fresh = sign_in(Client(), dana)
    assert fresh.get(f"/patients/{b_patient.code}/").status_code == 200
    entry = LogEntry.objects.get(additional_data__event="sessions ended")
    assert entry.actor == erin and entry.additional_data["clinic"] == clinic_b.pk
    assert entry.additional_data["scope"] == "clinic"
    assert "other clinics" in entry.changes_text


def test_the_only_membership_s_sign_out_ends_every_session(clinic_b, charlie, erin):
    phone = sign_in(Client(), charlie)
    admin_b = sign_in(Client(), erin)
    membership = Membership.objects.get(user=charlie)
    admin_b.post(f"/clinic/clinic-b/staff/{membership.code}/sign-out/")
    assert phone.get("/")["Location"].startswith("/accounts/login/")
    entry = LogEntry.objects.get(additional_data__event="sessions ended")
    assert entry.additional_data["scope"] == "all" and entry.additional_data["sessions"] == 1


def test_deactivation_in_b_leaves_dana_s_clinic_a_session(clinic_a, clinic_b, dana, erin, dana_in_b):
    session = sign_in(Client(), dana)
    sign_in(Client(), erin).post(f"/clinic/clinic-b/staff/{dana_in_b.code}/deactivate/")
    dana_in_b.refresh_from_db()
    assert not dana_in_b.is_active
    assert session.get("/clinic/clinic-a/staff/").status_code == 200
