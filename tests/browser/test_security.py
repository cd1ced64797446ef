"""Signing in with two factors, setting up an authenticator, confirming the password before an
export, the audit trail and erasure, in a real browser (axe and screenshots on each page)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from clinics.models import Clinic, Patient
from clinics.services import staff_invite
from monitoring.management.commands.seed_demo import DEMO_PASSWORD, DEMO_TOTP_SECRET
from tests.auth import totp_code
from tests.browser.test_dashboards import demo  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_new_colleague_joins_and_sets_up_two_factor_before_seeing_patients(desktop, demo):  # noqa: F811
    clinic = Clinic.objects.get(slug="demo")
    _, link = staff_invite(
        clinic=clinic,
        email="nora@demo.bordin.test",
        role="therapist",
        name="Nora Neu",
        invited_by=User.objects.get(email="admin@demo.bordin.test"),
        join_url=lambda token: f"{desktop.base_url}/join/{token}/",
    )
    page = desktop.page
    page.goto(link)
    page.fill("#password", "a-long-and-good-passphrase")
    page.fill("#password_again", "a-long-and-good-passphrase")
    page.get_by_role("button", name="Create my account").click()
    # The normal sign-in, back to the invitation, which a button accepts.
    page.wait_for_url("**/accounts/login/**")
    page.fill("#id_login", "nora@demo.bordin.test")
    page.fill("#id_password", "a-long-and-good-passphrase")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/join/**")
    desktop.check("join-accept")
    page.get_by_role("button", name="Accept and join").click()
    page.wait_for_url("**/accounts/2fa/totp/activate/**")
    desktop.check("mfa-set-up")
    secret = page.locator("#authenticator_secret").input_value()
    page.fill("#id_code", totp_code(secret))
    page.get_by_role("button", name="Activate").click()
    page.wait_for_url("**/accounts/2fa/recovery-codes/")
    desktop.check("mfa-recovery-codes")
    desktop.goto("/")
    assert page.locator("h1").inner_text().startswith("Caseload") or "caseload" in page.content().lower()
    desktop.check("caseload-new-colleague")


def test_an_admin_signs_in_confirms_the_password_to_export_and_reads_the_trail(desktop, demo, settings):  # noqa: F811
    settings.ACCOUNT_REAUTHENTICATION_TIMEOUT = 4  # seconds here, 5 minutes in production
    page = desktop.page
    desktop.goto("/accounts/login/")
    page.fill("#id_login", "admin@demo.bordin.test")
    page.fill("#id_password", DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/accounts/2fa/authenticate/")
    desktop.check("sign-in-code")
    page.fill("#id_code", totp_code(DEMO_TOTP_SECRET))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(desktop.base_url + "/")

    desktop.goto("/clinic/demo/exports/")
    page.get_by_label("Report", exact=True).select_option("session_scores")
    page.wait_for_timeout(4500)  # the sign-in is no longer recent
    page.get_by_role("button", name="Export").click()
    page.wait_for_url("**/accounts/reauthenticate/**")
    desktop.check("reauthenticate")
    page.fill("#id_password", DEMO_PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("link", name="Download").first.wait_for()

    desktop.goto("/clinic/demo/audit/")
    assert page.get_by_text("Signed in (admin@demo.bordin.test)").count() >= 1
    desktop.check("audit-trail")

    patient = Patient.objects.filter(clinic__slug="demo").order_by("label").first()
    desktop.goto(f"/clinic/demo/patients/{patient.code}/")
    page.fill("#erase-confirm", patient.label)
    page.wait_for_timeout(4500)
    page.get_by_role("button", name="Erase permanently").click()
    page.wait_for_url("**/accounts/reauthenticate/**")
    page.fill("#id_password", DEMO_PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url("**/clinic/demo/patients/")
    assert page.get_by_text(f"{patient.label} was erased").count() == 1
    desktop.check("patient-erased")
    assert not Patient.objects.filter(pk=patient.pk).exists()
