"""Writes behind the REST API that have no page equivalent yet: API tokens, and two session
steps the pages do inline.

- Tokens: ``api_token_create`` (shown once, stored hashed), ``api_token_revoke`` (by the owner
  or an admin of the token's clinic), ``api_token_use`` (the authentication step, including the
  at-most-once-a-minute ``last_used_at`` write). Creating and revoking a token writes an audit
  entry, because a token is a key to patient data.
- ``response_enter`` is the sequence of ``monitoring.care.views.response_enter`` (staff entry of a
  paper form): mark the session held, store the answers, withdraw open links, analyse on commit.
  The page should call it too, so that the sequence exists once.
- ``session_update`` changes an appointment's date or status as a health record pushes it.

Each raises ``ApplicationError`` (with a stable ``code`` where callers branch on it) or
``PermissionDenied``, and saves nothing when it does.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import date, datetime, timedelta

from auditlog.models import LogEntry
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from clinics import services as clinic_services
from clinics.errors import ApplicationError
from clinics.models import Clinic, Membership, Patient, Session
from monitoring.collection.invitations import invitation_revoke, session_mark_held
from monitoring.models import ApiToken, Invitation, Response
from monitoring.security.audit import entry_write

#: The fixed start of every token, so that secret scanners (and people) recognise one.
TOKEN_PREFIX = "bdn"  # noqa: S105 - a public marker, not a secret
#: ``last_used_at`` is written at most this often: an integration polling every second must not
#: turn every read into a write.
TOUCH_EVERY = timedelta(minutes=1)


def api_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def api_token_create(
    *, user: User, clinic: Clinic, name: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token for ``user`` in ``clinic``; returns the row and the token, which is never
    stored and cannot be shown again."""
    name = name.strip()
    if not name:
        raise ApplicationError("Give the token a name, e.g. the system that will use it.", code="invalid")
    if expires_at is not None and expires_at <= timezone.now():
        raise ApplicationError("The expiry must be in the future.", code="invalid")
    if not Membership.objects.filter(user_id=user.pk, clinic=clinic, is_active=True).exists():
        raise PermissionDenied("You can only create tokens for a clinic you work in.")
    prefix = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        row = ApiToken.objects.create(
            user_id=user.pk,
            clinic=clinic,
            name=name[:100],
            prefix=prefix,
            token_hash=api_token_hash(token),
            expires_at=expires_at,
        )
        _audit(row, actor=user, event="created")
    return row, token


def api_token_revoke(*, token: ApiToken, by: User) -> ApiToken:
    """Revoke a token: its owner may, and so may any active admin of its clinic. Revoking a
    revoked token changes nothing (a retried DELETE is not an error)."""
    is_owner = token.user_id == by.pk
    is_admin = Membership.objects.filter(
        user_id=by.pk, clinic_id=token.clinic_id, role=Membership.Role.ADMIN, is_active=True
    ).exists()
    if not (is_owner or is_admin):
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
        ApiToken.objects.select_related("user", "clinic").filter(token_hash=api_token_hash(token)).first()
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
    if found.expires_at is not None and found.expires_at <= now:
        raise ApplicationError(
            f"This API token expired on {timezone.localtime(found.expires_at):%Y-%m-%d %H:%M}; create a new one.",
            code="expired",
        )
    if (
        not found.user.is_active
        or not Membership.objects.filter(
            user_id=found.user_id, clinic_id=found.clinic_id, is_active=True
        ).exists()
    ):
        raise ApplicationError(
            "The owner of this API token no longer works in its clinic; it cannot be used.", code="inactive"
        )
    if found.last_used_at is None or now - found.last_used_at >= TOUCH_EVERY:
        ApiToken.objects.filter(pk=found.pk).update(last_used_at=now)
        found.last_used_at = now
    return found


# --- Sessions and responses ----------------------------------------------------------------------


def session_add(
    *, patient: Patient, on: date, status: str, user: User
) -> tuple[Session, tuple[Invitation, str] | None]:
    """The next session of the patient's open episode (as the patient page adds one), in the
    given status; a held session comes with its form link. All or nothing: if the link cannot be
    made (no instrument loaded), no session is left behind."""
    episode = patient.episodes.filter(ended_on=None).first()
    if episode is None:
        raise ApplicationError("This patient has no open episode of care; open one first.", code="no_episode")
    with transaction.atomic():
        session = clinic_services.session_create(episode=episode, date=on)
        link = session_update(session=session, user=user, status=status)
    return session, link


def session_update(
    *, session: Session, user: User, on: date | None = None, status: str | None = None
) -> tuple[Invitation, str] | None:
    """Change an appointment's date and/or status, as a health record reports it.

    Becoming *held* goes through ``session_mark_held`` (the page's button), which makes
    the patient's form link; the new invitation and token are returned. A session that is held
    already keeps its link: a health record re-sending the same state must not invalidate the
    link the patient has. Cancelling (or marking a no-show, or back to scheduled) withdraws open
    links, and is refused once answers are in: then the session took place.
    """
    with transaction.atomic():
        if on is not None and on != session.date:
            session.date = on
            session.save(update_fields=["date"])
        if status is None or status == session.status:
            return None
        if status == Session.Status.HELD:
            return session_mark_held(session=session, user=user)
        if Response.objects.filter(session=session).exists():
            raise ApplicationError(
                "Answers for this session are in, so it took place; it cannot be marked "
                f"'{Session.Status(status).label.lower()}'.",
                code="used",
            )
        session.status = status
        session.save(update_fields=["status"])
        for invitation in session.invitations.filter(used_at=None, revoked_at=None):
            invitation_revoke(invitation=invitation)
    return None
