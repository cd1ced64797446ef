"""Issue 8, proved: two-factor sign-in, lockout, re-authentication, session ending, the audit
trail (complete, per clinic, append-only), erasure and logs without secrets. Real sign-ins
through allauth's views here; the other modules use tests.auth.sign_in."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import pytest
from allauth.mfa.models import Authenticator
from auditlog.models import LogEntry
from axes.models import AccessAttempt
from django.contrib.sessions.models import Session as DjangoSession
from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.test import Client
from django.utils import timezone

from clinics.models import Episode, Patient, Session, StaffInvitation
from monitoring.clinic_admin.report import ReportFilters, clinic_report
from monitoring.models import Answer, ClinicEstimate, Flag, Response
from monitoring.security.audit_trail import AuditFilters, audit_entries
from monitoring.security.middleware import SIGNED_IN_AT
from monitoring.security.signals import AuditEntryImmutable
from tests.auth import sign_in, totp_code, totp_enable
from tests.care.test_dashboards import import_cohort
from tests.conftest import PASSWORD, finished_export


def password_step(client: Client, email: str, password: str = PASSWORD, **extra):
    return client.post("/accounts/login/", {"login": email, "password": password}, **extra)


def signed_in(client: Client) -> bool:
    response = client.get("/")
    return response.status_code == 200


# --- Two-factor sign-in -----------------------------------------------------------------------


def test_signing_in_takes_the_password_then_the_authenticator_code(client, alice):
    secret = totp_enable(alice)
    first = password_step(client, "alice@a.test")
    assert first.status_code == 302 and first["Location"] == "/accounts/2fa/authenticate/"
    assert not signed_in(client)  # a password alone signs no one in
    wrong = client.post("/accounts/2fa/authenticate/", {"code": "000000"})
    assert wrong.status_code == 200 and "Incorrect code" in wrong.content.decode()
    right = client.post("/accounts/2fa/authenticate/", {"code": totp_code(secret)})
    assert right.status_code == 302 and right["Location"] == "/"
    assert signed_in(client)
    entry = LogEntry.objects.filter(actor=alice, additional_data__event="sign-in").get()
    assert (
        entry.remote_addr == "127.0.0.1"
        and entry.additional_data["clinic"] == alice.memberships.get().clinic_id
    )


@pytest.mark.django_db(transaction=True)  # allauth signals after the commit, as in production
def test_staff_without_an_authenticator_set_one_up_before_seeing_any_patient_data(client, alice, patient):
    assert password_step(client, "alice@a.test")["Location"] == "/"  # no app yet: the password signs in
    for path in ("/", f"/patients/{patient.code}/", "/account/api-tokens/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/2fa/totp/activate/")
    api = client.get("/api/v1/patients/")
    assert api.status_code == 403 and api.json()["error"]["code"] == "mfa_required"
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    secret = page.context["form"].secret
    wrong = client.post("/accounts/2fa/totp/activate/", {"code": "123456"})
    assert wrong.status_code == 200 and not Authenticator.objects.filter(user=alice).exists()
    done = client.post("/accounts/2fa/totp/activate/", {"code": totp_code(secret)})
    assert done.status_code == 302 and done["Location"] == "/accounts/2fa/recovery-codes/"
    assert set(Authenticator.objects.filter(user=alice).values_list("type", flat=True)) == {
        "totp",
        "recovery_codes",
    }
    assert signed_in(client)
    assert client.get(f"/patients/{patient.code}/").status_code == 200


def test_a_password_only_session_of_someone_with_an_authenticator_is_ended(client, alice):
    totp_enable(alice)
    client.force_login(alice, backend="django.contrib.auth.backends.ModelBackend")
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session


def test_wrong_codes_are_rate_limited(client, alice):
    secret = totp_enable(alice)
    password_step(client, "alice@a.test")
    for _ in range(5):
        client.post("/accounts/2fa/authenticate/", {"code": "000000"})
    blocked = client.post("/accounts/2fa/authenticate/", {"code": totp_code(secret)})
    assert blocked.status_code == 200 and "Too many failed" in blocked.content.decode()
    assert not signed_in(client)
    failed = LogEntry.objects.filter(object_pk=str(alice.pk), additional_data__event="two-factor failed")
    assert failed.count() == 5 and not failed.exclude(actor=None).exists()  # who typed them is unknown


def test_staff_cannot_remove_their_authenticator(client, alice):
    sign_in(client, alice)
    response = client.post("/accounts/2fa/totp/deactivate/", {})
    assert Authenticator.objects.filter(user=alice, type="totp").exists()
    assert response.status_code in (200, 302)


def test_the_admin_site_signs_in_through_two_factor_too(client):
    response = client.get("/django-admin/login/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


# --- Lockout ----------------------------------------------------------------------------------


def test_five_wrong_passwords_lock_that_name_from_that_address_for_the_cool_off(client, alice, bob):
    totp_enable(alice)
    for _ in range(4):
        assert password_step(client, "alice@a.test", "wrong-password-1").status_code == 200
    assert password_step(client, "alice@a.test", "wrong-password-1").status_code == 429  # the fifth locks
    locked = password_step(client, "alice@a.test")  # now even the right password is refused
    assert locked.status_code in (200, 429) and "too many" in locked.content.decode().lower()
    assert "_auth_user_id" not in client.session
    assert password_step(Client(), "bob@a.test").status_code == 302  # another name from here works
    # allauth also allows at most 5 failures per account per 5 minutes, from anywhere. Once those
    # 5 minutes have passed, the lockout stays only on (name, address): the name works elsewhere...
    cache.clear()
    elsewhere = password_step(Client(REMOTE_ADDR="10.0.0.9"), "alice@a.test", REMOTE_ADDR="10.0.0.9")
    assert elsewhere.status_code == 302
    assert password_step(Client(), "alice@a.test").status_code == 429  # ...but not from here
    # ...until the cool-off (AXES_COOLOFF_MINUTES, 15) has passed.
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert password_step(Client(), "alice@a.test").status_code == 302
    failures = LogEntry.objects.filter(object_pk=str(alice.pk), additional_data__event="sign-in failed")
    assert failures.count() >= 5  # every refused attempt on a known account


# --- Re-authentication ------------------------------------------------------------------------


def test_staff_changes_and_exports_ask_for_the_password_again(client, dana, patient):
    sign_in(client, dana, reauthenticated=False)
    assert client.get("/clinic/clinic-a/staff/").status_code == 200  # looking does not ask
    invite = {"email": "new@a.test", "name": "Nora New", "role": "therapist"}
    asked = client.post("/clinic/clinic-a/staff/", invite)
    assert asked.status_code == 302 and asked["Location"].startswith("/accounts/reauthenticate/")
    assert not StaffInvitation.objects.exists()
    for path in (f"/patients/{patient.code}/report.pdf", "/clinic/clinic-a/audit.csv"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/reauthenticate/")
    confirmed = client.post(asked["Location"], {"password": PASSWORD})
    assert StaffInvitation.objects.filter(email="new@a.test").count() == 1  # the request was carried out
    assert confirmed.status_code == 200
    assert client.get("/clinic/clinic-a/audit.csv").status_code == 200  # now recent


# --- Sessions ---------------------------------------------------------------------------------


def test_signing_out_ends_the_session_on_the_server(client, alice):
    sign_in(client, alice)
    key = client.session.session_key
    client.post("/accounts/logout/")
    assert not DjangoSession.objects.filter(session_key=key).exists()
    replay = Client()
    replay.cookies["sessionid"] = key
    assert not signed_in(replay)
    assert LogEntry.objects.filter(actor=alice, additional_data__event="sign-out").exists()


def test_a_password_change_ends_every_other_session(alice):
    here, elsewhere = sign_in(Client(), alice), sign_in(Client(), alice)
    changed = here.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": "a-new-long-passphrase", "password2": "a-new-long-passphrase"},
    )
    assert changed.status_code == 302
    assert signed_in(here) and not signed_in(elsewhere)
    assert LogEntry.objects.filter(actor=alice, additional_data__event="password changed").exists()


def test_weak_passwords_are_refused_by_djangos_validators(alice):
    here = sign_in(Client(), alice)
    refused = here.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": "12345678", "password2": "12345678"},
    )
    assert refused.status_code == 200
    assert "too short" in refused.content.decode() or "too common" in refused.content.decode()


def test_an_admin_signs_a_colleague_out_everywhere(client, dana, alice):
    phone, laptop = sign_in(Client(), alice), sign_in(Client(), alice)
    sign_in(client, dana)
    membership = alice.memberships.get()
    response = client.post(f"/clinic/clinic-a/staff/{membership.code}/sign-out/", follow=True)
    assert "signed out everywhere: 2 session(s) ended" in response.content.decode()
    assert not signed_in(phone) and not signed_in(laptop) and signed_in(client)
    entry = LogEntry.objects.get(additional_data__event="sessions ended")
    assert entry.actor == dana and entry.additional_data["clinic"] == membership.clinic_id


def test_a_session_ends_after_the_absolute_lifetime_however_active(client, alice, settings):
    sign_in(client, alice)
    assert signed_in(client)
    session = client.session
    session[SIGNED_IN_AT] = time.time() - settings.SESSION_ABSOLUTE_SECONDS - 1
    session.save()
    response = client.get("/", follow=True)
    assert "sessions last at most 12 hours" in response.content.decode()
    assert not signed_in(client)


# --- Audit trail ------------------------------------------------------------------------------


def test_the_application_cannot_change_or_delete_audit_entries(client, alice, patient):
    sign_in(client, alice)
    client.get(f"/patients/{patient.code}/")
    entry = LogEntry.objects.filter(additional_data__what="patient page").get()
    entry.changes_text = "nothing happened"
    with pytest.raises(AuditEntryImmutable), transaction.atomic():
        entry.save()
    with pytest.raises(AuditEntryImmutable), transaction.atomic():
        entry.delete()
    with pytest.raises(AuditEntryImmutable), transaction.atomic():
        LogEntry.objects.filter(pk=entry.pk).delete()
    # Bulk updates bypass the ORM's signals: the database itself refuses (a trigger).
    with pytest.raises((DatabaseError, IntegrityError)), transaction.atomic():
        LogEntry.objects.filter(pk=entry.pk).update(changes_text="nothing happened")
    entry.refresh_from_db()
    assert entry.changes_text != "nothing happened"


@pytest.mark.postgres
def test_the_database_refuses_to_delete_an_audit_entry(client, alice, patient):
    """PostgreSQL's trigger refuses DELETE as well (SQLite's only UPDATE: Django's test flush
    empties tables with DELETE there; migration 0004)."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's trigger refuses UPDATE only; the DELETE trigger is PostgreSQL's")
    sign_in(client, alice)
    client.get(f"/patients/{patient.code}/")
    entry = LogEntry.objects.filter(additional_data__what="patient page").get()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM auditlog_logentry WHERE id = %s", [entry.pk])
    assert LogEntry.objects.filter(pk=entry.pk).exists()


def test_admins_read_and_export_their_clinics_trail_and_only_theirs(client, dana, erin, alice, patient):
    sign_in(Client(), alice).get(f"/patients/{patient.code}/")
    sign_in(client, dana)
    page = client.get("/clinic/clinic-a/audit/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Page read of patient page by alice@a.test" in html and "Signed in (alice@a.test)" in html
    reads = client.get("/clinic/clinic-a/audit/?kind=reads").content.decode()
    assert "patient page" in reads and "Signed in" not in reads
    csv = b"".join(client.get("/clinic/clinic-a/audit.csv?who=alice").streaming_content).decode()
    assert csv.startswith("time_utc,who,action,patient,record_type,record,description,from_ip,event")
    assert "alice@a.test" in csv and "dana@a.test" not in csv.split("\r\n", 1)[1]
    assert LogEntry.objects.filter(actor=dana, additional_data__event="audit export").exists()
    other = sign_in(Client(), erin)
    assert other.get("/clinic/clinic-a/audit/").status_code == 404
    assert other.get("/clinic/clinic-a/audit.csv").status_code == 404
    assert "alice@a.test" not in other.get("/clinic/clinic-b/audit/").content.decode()
    assert sign_in(Client(), alice).get("/clinic/clinic-a/audit/").status_code == 404  # therapists: no


def test_the_trail_names_the_clinic_of_every_change(dana, clinic_a, patient, episode, session):
    kinds = {
        e.content_type.model for e in audit_entries(clinic=clinic_a, filters=AuditFilters(kind="changes"))
    }
    assert {"patient", "episode", "session", "membership"} <= kinds


def test_patient_identifiers_never_enter_the_trail(client, dana, patient):
    sign_in(client, dana)
    client.post(
        f"/clinic/clinic-a/patients/{patient.code}/",
        {
            "form": "edit",
            "label": "Z.Q.",
            "external_id": "EXT-SECRET-9",
            "language": "en",
            "contact_email": "zq@example.org",
            "contact_phone": "",
        },
    )
    assert Patient.objects.get(pk=patient.pk).label == "Z.Q."
    everything = " ".join(
        f"{e.object_repr} {e.changes} {e.changes_text} {e.additional_data}" for e in LogEntry.objects.all()
    )
    for identifier in ("P.A.", "Z.Q.", "EXT-1", "EXT-SECRET-9", "zq@example.org"):
        assert identifier not in everything
    change = LogEntry.objects.filter(content_type__model="patient", action=LogEntry.Action.UPDATE).latest(
        "pk"
    )
    assert change.changes_dict["label"] == ["[withheld]", "[withheld]"]


# --- Erasure ----------------------------------------------------------------------------------


def test_an_admin_erases_a_patient_and_clinic_figures_stay_consistent(
    client, clinic_a, dana, alice, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    import_cohort(clinic_a, alice, 3, 10, scenarios={"stable": 2, "rupture_unrepaired": 1}, prefix="e")
    earlier_export = finished_export(clinic_a, dana, tmp_path)
    gone = Patient.objects.get(label="eP003")
    kept_ids = list(Patient.objects.exclude(pk=gone.pk).values_list("pk", flat=True))
    gone_code, gone_episodes = str(gone.code), list(gone.episodes.values_list("pk", flat=True))
    before = clinic_report(clinic=clinic_a, filters=_all_time())
    sign_in(client, dana)
    client.get(f"/patients/{gone.code}/")  # a read before the erasure stays in the trail
    refused = client.post(f"/clinic/clinic-a/patients/{gone.code}/erase/", {"confirm": "eP00"}, follow=True)
    assert "Nothing was erased" in refused.content.decode()
    assert Patient.objects.filter(pk=gone.pk).exists()

    done = client.post(f"/clinic/clinic-a/patients/{gone.code}/erase/", {"confirm": "eP003"}, follow=True)
    assert "eP003 was erased" in done.content.decode()
    assert not Patient.objects.filter(pk=gone.pk).exists()
    assert not Episode.objects.filter(pk__in=gone_episodes).exists()
    assert not Session.objects.filter(episode__in=gone_episodes).exists()
    assert not Response.objects.filter(session__episode__in=gone_episodes).exists()
    assert not Flag.objects.filter(episode__in=gone_episodes).exists()
    assert Answer.objects.filter(response__session__episode__patient__pk__in=kept_ids).count() == 2 * 10 * 12
    after = clinic_report(clinic=clinic_a, filters=_all_time())
    assert (before.totals.patients, after.totals.patients) == (3, 2)
    assert after.totals.held == before.totals.held - 10
    assert after.totals.completed == before.totals.completed - 10
    latest = ClinicEstimate.objects.filter(clinic=clinic_a).latest("estimated_at")
    assert latest.patients_used == 2  # the clinic estimate no longer includes the erased patient
    erasure = LogEntry.objects.get(additional_data__event="erasure")
    assert erasure.actor == dana and erasure.additional_data["sessions"] == 10
    assert erasure.additional_data["patient"] == gone_code
    earlier_export.refresh_from_db()  # an export made before may hold the patient: its file is gone
    assert earlier_export.file_path == "" and not (tmp_path / "exports" / str(earlier_export.code)).exists()
    assert "eP003" not in " ".join(
        f"{e.object_repr} {e.changes_text} {e.additional_data}" for e in LogEntry.objects.all()
    )


def test_only_the_clinics_admins_can_erase(client, alice, erin, patient):
    for who in (alice, erin):
        response = sign_in(Client(), who).post(
            f"/clinic/clinic-a/patients/{patient.code}/erase/", {"confirm": "P.A."}
        )
        assert response.status_code == 404
    assert Patient.objects.filter(pk=patient.pk).exists()


def _all_time():
    from datetime import date

    return ReportFilters(start=date(2000, 1, 1), end=date(2100, 1, 1))


# --- Logs -------------------------------------------------------------------------------------


def test_logs_never_contain_a_token_or_patient_data(client, alice, dana, patient, session, instrument):
    """Through the configured console handler (JSON lines, RedactingFilter), as in production."""
    import io
    import json

    from monitoring.collection.invitations import invitation_create
    from monitoring.security.logs import JsonFormatter
    from monitoring.security.tokens import api_token_create

    handler = next(h for h in logging.getLogger().handlers if h.name == "console")
    stream, handler.stream = handler.stream, io.StringIO()
    formatter, handler.formatter = handler.formatter, JsonFormatter()
    try:
        _, token = invitation_create(session=session, created_by=alice)
        answers = {f"item_{n}": "4" for n in range(1, 13)}
        Client().post(f"/f/{token}/", answers)
        Client().post(f"/f/{token}/", answers)  # the used link
        Client().get(f"/f/{token}x/")  # a mistyped link: a 404, logged with its path
        Client().get(f"/join/{token}/")
        _, api_token = api_token_create(user=dana, clinic=patient.clinic, name="EHR")
        Client().get("/api/v1/patients/", HTTP_AUTHORIZATION=f"Bearer {api_token}")
        Client().get("/api/v1/patients/", HTTP_AUTHORIZATION=f"Bearer {api_token}x")
        Client().get(f"/api/v1/nothing/{api_token}/")
        sign_in(client, alice).get(f"/patients/{patient.code}/")
        logging.getLogger("monitoring").warning("Link %s refused for token %s", f"/f/{token}/", api_token)
        output = handler.stream.getvalue()
    finally:
        handler.stream, handler.formatter = stream, formatter
    lines = [json.loads(line) for line in output.splitlines()]
    assert any(line.get("path") == "/f/[redacted]/" for line in lines)  # the 404 was logged, scrubbed
    assert any(line["message"] == "Link /f/[redacted]/ refused for token [redacted]" for line in lines)
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    for secret in (token, api_token, "P.A.", "EXT-1"):
        assert secret not in output


def test_gunicorn_access_lines_are_scrubbed_too():
    from monitoring.security.logs import scrub

    line = 'GET /f/AbC-123_xyz/ HTTP/1.1 "Authorization: Bearer bdn_ab12_zz" /join/QwErTy/?next=/'
    assert (
        scrub(line)
        == 'GET /f/[redacted]/ HTTP/1.1 "Authorization: Bearer [redacted]" /join/[redacted]/?next=/'
    )


def test_production_hashes_passwords_with_argon2(settings, alice):
    from django.contrib.auth.hashers import identify_hasher

    from monitoring import settings as production

    settings.PASSWORD_HASHERS = production.PASSWORD_HASHERS  # the tests use a fast hasher
    alice.set_password("a-long-and-good-passphrase")
    assert identify_hasher(alice.password).algorithm == "argon2"


def test_an_api_call_in_a_timed_out_browser_session_gets_a_json_401(client, alice, clinic_a):
    sign_in(client, alice)
    session = client.session
    session["bordin_last_seen"] = time.time() - 31 * 60
    session.save()
    response = client.get("/api/v1/patients/")
    assert response.status_code == 401 and response.json()["error"]["code"] == "session_ended"


def test_a_password_only_session_reaches_no_account_page_either(client, alice):
    """Not even allauth's pages (recovery codes, email, password): the session is ended."""
    totp_enable(alice)
    client.force_login(alice, backend="django.contrib.auth.backends.ModelBackend")
    response = client.get("/accounts/2fa/recovery-codes/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session


def test_every_log_handler_scrubs():
    from monitoring.security.logs import RedactingFilter

    names = ("", "django", "django.request", "django.server", "monitoring", "gunicorn.error")
    reached = []  # (logger name, handler): the handlers a record from each logger reaches
    for name in names:
        logger = logging.getLogger(name)
        while logger is not None:
            reached += [
                (name, handler)
                for handler in logger.handlers
                if not type(handler).__module__.startswith("_pytest")  # pytest's own capture
            ]
            logger = logger.parent if logger.propagate else None
    # Not vacuous: every logger's records reach a handler (LOGGING is installed), so each is checked.
    assert {name for name, _ in reached} == set(names), "a logger reaches no handler: is LOGGING installed?"
    for name, handler in reached:
        assert any(isinstance(f, RedactingFilter) for f in handler.filters), (name, handler)


def test_the_trail_refuses_bad_filters_with_a_message(client, dana):
    sign_in(client, dana)
    backwards = client.get("/clinic/clinic-a/audit/?start=2026-12-01&end=2026-01-01")
    assert (
        backwards.status_code == 400 and "The period must start before it ends." in backwards.content.decode()
    )
    bogus = client.get("/clinic/clinic-a/audit/?kind=everything-ever&start=yesterday")
    assert bogus.status_code == 400
    html = bogus.content.decode()
    assert "Select a valid choice" in html and "Enter a valid date" in html
    report = client.get("/clinic/clinic-a/report/?start=yesterday")
    assert report.status_code == 400 and "Enter a valid date" in report.content.decode()
