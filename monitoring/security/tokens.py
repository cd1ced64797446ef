"""API tokens: create (shown once, stored hashed, always expiring: API_TOKEN_DEFAULT_DAYS unless
chosen, never more than API_TOKEN_MAX_DAYS), revoke (by the owner or an admin of the token's
clinic), and use (the authentication step, with the at-most-once-a-minute ``last_used_at`` write). Creating and revoking a token writes an audit entry, because a token is
a key to patient data. The token page and the API both call these."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from clinics.errors import ApplicationError
from clinics.models import Clinic
from clinics.permissions import is_clinic_admin, works_in
from clinics.tokens import token_hash
from monitoring.models import ApiToken
from monitoring.security.audit import entry_write

#: The fixed start of every token, so that secret scanners (and people) recognise one.
TOKEN_PREFIX = "bdn"  # noqa: S105 - a public marker, not a secret


#: ``last_used_at`` is written at most this often: an integration polling every second must not
#: turn every read into a write.
TOUCH_EVERY = timedelta(minutes=1)


def _max_days() -> int:
    return int(settings.API_TOKEN_MAX_DAYS)


def api_token_expiry(*, days: int | None, now: datetime | None = None) -> datetime:
    """When a token created now for ``days`` days expires (``None``: API_TOKEN_DEFAULT_DAYS).
    Refuses a lifetime under a day or over API_TOKEN_MAX_DAYS before any date arithmetic."""
    if days is None:
        days = min(int(settings.API_TOKEN_DEFAULT_DAYS), _max_days())
    if not 1 <= days <= _max_days():
        raise ApplicationError(
            f"Give the lifetime as a number of days from 1 to {_max_days()}: a token lives at most "
            f"{_max_days()} days.",
            code="invalid",
        )
    return (now or timezone.now()) + timedelta(days=days)


def api_token_expires(token: ApiToken) -> datetime:
    """When ``token`` stops working. Tokens created before every token had an expiry expire
    API_TOKEN_MAX_DAYS after they were created."""
    return token.expires_at or token.created_at + timedelta(days=_max_days())


def api_token_create(
    *, user: User, clinic: Clinic, name: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token for ``user`` in ``clinic``; returns the row and the token, which is never
    stored and cannot be shown again. Every token expires: at ``expires_at`` (in the future,
    at most API_TOKEN_MAX_DAYS days away), or after API_TOKEN_DEFAULT_DAYS days."""
    name = name.strip()
    if not name:
        raise ApplicationError("Give the token a name, e.g. the system that will use it.", code="invalid")
    now = timezone.now()
    if expires_at is None:
        expires_at = api_token_expiry(days=None, now=now)
    if expires_at <= now:
        raise ApplicationError("The expiry must be in the future.", code="invalid")
    if expires_at > now + timedelta(days=_max_days()):
        raise ApplicationError(
            f"A token lives at most {_max_days()} days: choose an expiry before "
            f"{timezone.localtime(now + timedelta(days=_max_days())):%Y-%m-%d}.",
            code="invalid",
        )
    if not works_in(user=user, clinic_id=clinic.pk):
        raise PermissionDenied("You can only create tokens for a clinic you work in.")
    prefix = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        row = ApiToken.objects.create(
            user_id=user.pk,
            clinic=clinic,
            name=name[:100],
            prefix=prefix,
            token_hash=token_hash(token),
            expires_at=expires_at,
        )
        _audit(row, actor=user, event="created")
    return row, token


def api_token_revoke(*, token: ApiToken, by: User) -> ApiToken:
    """Revoke a token: its owner may, and so may any active admin of its clinic. Revoking a
    revoked token changes nothing (a retried DELETE is not an error)."""
    if not (token.user_id == by.pk or is_clinic_admin(user=by, clinic_id=token.clinic_id)):
        raise PermissionDenied("Only the token's owner or an admin of its clinic may revoke it.")
    if token.revoked_at is not None:
        return token
    with transaction.atomic():
        ApiToken.objects.filter(pk=token.pk, revoked_at=None).update(revoked_at=timezone.now(), revoked_by=by)
        token.refresh_from_db()
        _audit(token, actor=by, event="revoked")
    return token


def _audit(token: ApiToken, *, actor: User, event: str) -> None:
    entry_write(
        instance=token,
        actor=actor,
        action=LogEntry.Action.CREATE if event == "created" else LogEntry.Action.UPDATE,
        text=f"API token {token.name} (bdn_{token.prefix}_…) {event}",
        data={"event": f"api token {event}", "token": str(token.code), "clinic": str(token.clinic.code)},
    )


def api_token_use(*, token: str, now: datetime | None = None) -> ApiToken:
    """The token row for a presented token, if it may be used now; records the use.

    Refuses (``ApplicationError`` with code ``unknown``, ``revoked``, ``expired`` or
    ``inactive``) a token that is not known, was revoked, has expired, or whose owner no longer
    works in its clinic, with a message that says which.
    """
    now = now or timezone.now()
    found = (
        ApiToken.objects.select_related("user", "clinic").filter(token_hash=token_hash(token)).first()
        if token.startswith(TOKEN_PREFIX + "_")
        else None
    )
    if found is None:
        raise ApplicationError("This API token is not known. Check that it was copied whole.", code="unknown")
    if found.revoked_at is not None:
        raise ApplicationError(
            f"This API token was revoked on {timezone.localtime(found.revoked_at):%Y-%m-%d %H:%M}; create a new one.",
            code="revoked",
        )
    if api_token_expires(found) <= now:
        raise ApplicationError(
            f"This API token expired on {timezone.localtime(api_token_expires(found)):%Y-%m-%d %H:%M}; "
            "create a new one.",
            code="expired",
        )
    if not found.user.is_active or not works_in(user=found.user, clinic_id=found.clinic_id):
        raise ApplicationError(
            "The owner of this API token no longer works in its clinic; it cannot be used.", code="inactive"
        )
    if found.last_used_at is None or now - found.last_used_at >= TOUCH_EVERY:
        ApiToken.objects.filter(pk=found.pk).update(last_used_at=now)
        found.last_used_at = now
    return found
