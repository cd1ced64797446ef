"""Finding 3 of issue 14, the configuration half: with the production variables docs/operations.md
listed, ``EMAIL_BACKEND`` was unset, so the console backend printed each patient's address and
whole ``/f/<token>/`` link to stdout, and ``check --deploy`` said "no issues". It now fails
(exit status 1, Error level) on each default that is only safe on a developer's machine, and is
clean with the documented variables (tests/test_settings.py).
"""

from __future__ import annotations

import pytest

from tests.test_settings import manage, production_variables

UNSET = None


@pytest.mark.parametrize(
    ("variable", "value", "check"),
    [
        ("EMAIL_BACKEND", UNSET, "bordin.E002"),  # the probe: the console backend
        ("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend", "bordin.E002"),
        ("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend", "bordin.E002"),
        ("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend", "bordin.E002"),
        ("SMS_BACKEND", UNSET, "bordin.E003"),
        ("SMS_BACKEND", "monitoring.collection.messaging.ConsoleSmsBackend", "bordin.E003"),
        ("SITE_URL", UNSET, "bordin.E004"),
        ("SITE_URL", "http://localhost:8000", "bordin.E004"),
        ("SITE_URL", "https://127.0.0.1", "bordin.E004"),
        ("SITE_URL", "http://bordin.example.org", "bordin.E004"),  # links would travel unencrypted
        ("DEBUG", "1", "bordin.E001"),
    ],
)
def test_check_deploy_fails_on_each_unsafe_default(tmp_path, variable, value, check):
    env = production_variables(tmp_path)
    if value is UNSET:
        env.pop(variable)
    else:
        env[variable] = value
    result = manage("check", "--deploy", **env)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"({check})" in output and "ERRORS:" in output, output


@pytest.mark.parametrize(
    ("variable", "value", "check"),
    [("ALLOWED_HOSTS", "other.example.org", "bordin.W001"), ("DEFAULT_FROM_EMAIL", UNSET, "bordin.W002")],
)
def test_check_deploy_warns_of_links_that_would_not_arrive(tmp_path, variable, value, check):
    env = production_variables(tmp_path)
    if value is UNSET:
        env.pop(variable)
    else:
        env[variable] = value
    result = manage("check", "--deploy", "--fail-level", "WARNING", **env)
    output = result.stdout + result.stderr
    assert result.returncode == 1 and f"({check})" in output, output


def test_the_checks_only_guard_deployments(tmp_path):
    """A developer's ``check`` (no --deploy) with the development defaults stays quiet."""
    result = manage("check", DEBUG="1", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert result.returncode == 0 and "bordin." not in result.stdout + result.stderr, result.stderr


@pytest.mark.django_db
def test_the_documented_sms_choice_refuses_to_text_a_link_with_a_message(settings, alice, patient, session):
    """NoSmsBackend, for a clinic without an SMS gateway: the session page shows the message, and
    the link is not marked as sent."""
    from clinics.errors import ApplicationError
    from monitoring.collection.invitations import invitation_create, invitation_send

    settings.BORDIN_SMS_BACKEND = "monitoring.collection.messaging.NoSmsBackend"
    patient.contact_phone = "+49 170 0000000"
    patient.save()
    invitation, _ = invitation_create(session=session, created_by=alice)
    with pytest.raises(ApplicationError, match="Text messages are not set up for this clinic"):
        invitation_send(invitation=invitation, channel="sms")
    invitation.refresh_from_db()
    assert invitation.sent_to == ""
