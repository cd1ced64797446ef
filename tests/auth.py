"""Signing staff in for tests that are not about signing in.

``sign_in`` leaves a client where a real sign-in leaves it: the user has an authenticator app
(TOTP), signed in with password and code, and re-authenticated moments ago (so exports and staff
changes do not ask again). The sign-in itself, the two-factor step and re-authentication are
tested for real in tests/security/test_security.py and the browser tests.
"""

from __future__ import annotations

import time

from allauth.mfa.models import Authenticator
from django.contrib.auth.models import User
from django.test import Client

from monitoring.security import allauth
from monitoring.security.middleware import MFA_DONE


def totp_enable(user: User, secret: str | None = None) -> str:
    """Give ``user`` an authenticator app; returns its secret."""
    existing = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
    if existing is not None:
        from allauth.mfa.utils import decrypt

        return str(decrypt(existing.data["secret"]))
    secret = secret or allauth.totp_secret_new()
    allauth.totp_activate(user=user, secret=secret)
    return secret


def totp_code(secret: str) -> str:
    """The code an authenticator app shows now."""
    return allauth.totp_code(secret=secret)


def sign_in(client: Client, user: User, *, reauthenticated: bool = True) -> Client:
    totp_enable(user)
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    session = client.session
    now = time.time()
    records = [{"method": "password", "at": now}, {"method": "mfa", "at": now, "type": "totp"}]
    if reauthenticated:
        records.append({"method": "password", "at": now, "reauthenticated": True})
    allauth.authentication_records_set(session=session, user=user, records=records)
    session[MFA_DONE] = True  # what the sign-in signal records after the code step
    session.save()
    return client
