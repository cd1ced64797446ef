"""The allauth internals we use, in one module.

allauth keeps these in its private ``internal`` packages: they are not part of its documented
API and may change in any release. They are pinned to django-allauth 65.21.x (pyproject.toml);
on an upgrade, this is the only module to read again (``grep -rn "allauth.*internal"`` must find
nothing else in monitoring, clinics, tests or bench). Each wrapper says what it does and why we
need it:

- ``authentication_records_set``: writes a session's authentication records as allauth's sign-in
  leaves them (tests sign staff in without going through the forms).
- ``totp_secret_new``, ``totp_activate``, ``totp_code``: an authenticator app (TOTP) for the demo
  accounts, benchmarks and tests, and the code it shows at a given time.
- ``recovery_codes_activate``: recovery codes for the demo accounts, as allauth makes them when
  someone sets up their app.
- ``reauthentication_needed``: the test behind allauth's ``reauthentication_required`` decorator
  (the pages' rule), so that the API can apply the same rule and answer in JSON
  (``monitoring.security.decorators.sign_in_is_recent``).
"""

from __future__ import annotations

import time

from allauth.account.internal.flows.login import (
    _AUTHENTICATION_METHODS_USER_SESSION_KEY,
    AUTHENTICATION_METHODS_SESSION_KEY,
)
from allauth.account.internal.flows.reauthentication import is_reauthentication_required
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from django.contrib.auth.models import User
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest


def authentication_records_set(*, session: SessionBase, user: User, records: list[dict]) -> None:
    """Replace the session's authentication records (what allauth's sign-in appends to)."""
    session[AUTHENTICATION_METHODS_SESSION_KEY] = records
    session[_AUTHENTICATION_METHODS_USER_SESSION_KEY] = str(user.pk)


def totp_secret_new() -> str:
    """A new random authenticator secret (base32), as allauth generates at set-up."""
    return generate_totp_secret()


def totp_activate(*, user: User, secret: str) -> Authenticator:
    """Give ``user`` an authenticator app with ``secret`` (stored encrypted, as allauth does)."""
    return TOTP.activate(user, secret).instance


def totp_code(*, secret: str, at: float | None = None) -> str:
    """The code an authenticator app with ``secret`` shows at ``at`` (default: now)."""
    step = int(time.time() if at is None else at) // mfa_settings.TOTP_PERIOD
    return format_hotp_value(hotp_value(secret, step))


def recovery_codes_activate(*, user: User) -> Authenticator:
    """Give ``user`` recovery codes (kept if they have some already)."""
    return RecoveryCodes.activate(user).instance


def reauthentication_needed(*, request: HttpRequest) -> bool:
    """True if ``request``'s session must confirm the password (or a code) again before an
    action that needs a recent sign-in: exactly what allauth's ``reauthentication_required``
    decorator checks (no confirmation within ACCOUNT_REAUTHENTICATION_TIMEOUT; always for a
    signed-out visitor)."""
    return bool(is_reauthentication_required(request, app=""))
