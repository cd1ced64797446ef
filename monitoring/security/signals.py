"""Sign-in events in the audit trail, session rules at sign-in, and the audit trail's own guard.

- Every sign-in, failed sign-in (of a known account), failed two-factor code, sign-out, password
  change and authenticator change writes an entry, once per clinic of the user, so that each
  clinic's admins see it in their trail. The entry keeps who, when (UTC), from where (IP).
- Every sign-in is added to allauth's index of the user's sessions (allauth.usersessions), and a
  password change or reset ends every other session of that user through it.
- Audit entries cannot be changed or deleted through the application: the ORM refuses here, and
  the database refuses too (migration monitoring 0004: triggers).
"""

from __future__ import annotations

import time
from typing import Any

from auditlog.models import LogEntry
from django.contrib.auth import user_logged_in, user_logged_out, user_login_failed
from django.contrib.auth.models import User
from django.db.models.signals import pre_delete, pre_save
from django.http import HttpRequest

from clinics.models import Membership
from monitoring.security.middleware import MFA_DONE, SIGNED_IN_AT


class AuditEntryImmutable(Exception):
    """Raised on any attempt to change or delete an audit entry."""


def _refuse_change(sender: type, instance: LogEntry, **kwargs: Any) -> None:
    if instance.pk is not None and not instance._state.adding:
        raise AuditEntryImmutable("Audit entries cannot be changed.")


def _refuse_delete(sender: type, instance: LogEntry, **kwargs: Any) -> None:
    raise AuditEntryImmutable("Audit entries cannot be deleted.")


def axes_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """The name django-axes locks on (with the address): allauth authenticates with ``email``;
    before that, the sign-in form posts it as ``login``."""
    name = (
        (credentials or {}).get("email") or (credentials or {}).get("username") or request.POST.get("login")
    )
    return str(name).strip().lower() if name else None


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address: ``REMOTE_ADDR`` as ``ClientAddressMiddleware`` set it from the
    trusted proxies' ``X-Forwarded-For`` (``TRUSTED_PROXIES``). The audit trail and django-axes
    (``AXES_CLIENT_IP_CALLABLE``) both read it here."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def account_event(
    *, user: User, request: HttpRequest | None, event: str, text: str, by_user: bool = True
) -> None:
    """One entry per clinic the user works in (every clinic's admins see their staff's events).

    ``by_user`` is False for failed attempts: the entry is about the account, but who typed the
    wrong password or code is not known, so it names no actor (the address is kept)."""
    from monitoring.security.audit import entry_write

    clinics: list[int | None] = list(Membership.objects.filter(user=user).values_list("clinic_id", flat=True))
    clinics = clinics or [None]
    for clinic in clinics:
        entry_write(
            instance=user,
            actor=user if by_user else None,
            action=LogEntry.Action.ACCESS,
            text=f"{text} ({user.email})",
            data={"event": event, **({"clinic": clinic} if clinic else {})},
            remote_addr=client_ip(request),
        )


def _signed_in(sender: type, request: HttpRequest, user: User, **kwargs: Any) -> None:
    from allauth.account.authentication import AUTHENTICATION_METHODS_SESSION_KEY, get_authentication_records

    from clinics.services import user_session_record

    request.session[SIGNED_IN_AT] = time.time()
    if not request.session.session_key:
        request.session.save()
    # Every sign-in, not only those through allauth's views: ending someone's sessions reads this.
    user_session_record(
        user=user,
        session_key=str(request.session.session_key),
        ip=client_ip(request) or "0.0.0.0",  # noqa: S104 - an unknown address, not a bind
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )
    records = get_authentication_records(request, user)
    # Two-factor is done only if this sign-in passed allauth's code step (a sign-in by password
    # alone, e.g. on the staff invitation page, does not count).
    if any(record.get("method") == "mfa" for record in records):
        request.session[MFA_DONE] = True
    # Signing in counts as a recent authentication: exports and staff changes ask again only
    # once ACCOUNT_REAUTHENTICATION_TIMEOUT has passed since (allauth counts only explicit
    # re-authentications, which would ask right after signing in).
    if records:
        request.session[AUTHENTICATION_METHODS_SESSION_KEY] = [
            {**r, "reauthenticated": True} for r in records
        ]
    account_event(user=user, request=request, event="sign-in", text="Signed in")


def _signed_out(sender: type, request: HttpRequest, user: User | None, **kwargs: Any) -> None:
    if user is not None:
        account_event(user=user, request=request, event="sign-out", text="Signed out")


def _sign_in_failed(
    sender: type, credentials: dict[str, Any], request: HttpRequest | None = None, **kw: Any
) -> None:
    login = credentials.get("email") or credentials.get("username") or credentials.get("login")
    user = User.objects.filter(email__iexact=login).first() if login else None
    if user is not None:  # unknown names are kept by django-axes (AccessAttempt), not per clinic
        account_event(
            user=user, request=request, event="sign-in failed", text="Failed sign-in for", by_user=False
        )


def _password_changed(sender: type, request: HttpRequest, user: User, **kwargs: Any) -> None:
    from clinics.services import user_sessions_end

    user_sessions_end(user=user, keep=request.session.session_key)
    account_event(
        user=user, request=request, event="password changed", text="Password changed; other sessions ended"
    )


def _mfa_added(sender: type, request: HttpRequest, user: User, authenticator: Any, **kwargs: Any) -> None:
    if authenticator.type == "totp":
        request.session[MFA_DONE] = True
    account_event(
        user=user,
        request=request,
        event="two-factor added",
        text=f"Two-factor method added: {authenticator.type}",
    )


def _mfa_reset(sender: type, request: HttpRequest, user: User, authenticator: Any, **kwargs: Any) -> None:
    account_event(
        user=user,
        request=request,
        event="two-factor reset",
        text=f"Two-factor method renewed: {authenticator.type}",
    )


def _mfa_failed(sender: type, request: HttpRequest, user: User, **kwargs: Any) -> None:
    account_event(
        user=user, request=request, event="two-factor failed", text="Wrong two-factor code for", by_user=False
    )


def connect() -> None:
    from allauth.account import signals as account_signals
    from allauth.mfa import signals as mfa_signals

    pre_save.connect(_refuse_change, sender=LogEntry, dispatch_uid="bordin-audit-no-change")
    pre_delete.connect(_refuse_delete, sender=LogEntry, dispatch_uid="bordin-audit-no-delete")
    user_logged_in.connect(_signed_in, dispatch_uid="bordin-signed-in")
    user_logged_out.connect(_signed_out, dispatch_uid="bordin-signed-out")
    user_login_failed.connect(_sign_in_failed, dispatch_uid="bordin-sign-in-failed")
    for signal in (
        account_signals.password_changed,
        account_signals.password_reset,
        account_signals.password_set,
    ):
        signal.connect(_password_changed, dispatch_uid=f"bordin-password-{id(signal)}")
    mfa_signals.authenticator_added.connect(_mfa_added, dispatch_uid="bordin-mfa-added")
    mfa_signals.authenticator_reset.connect(_mfa_reset, dispatch_uid="bordin-mfa-reset")
    mfa_signals.authentication_failed.connect(_mfa_failed, dispatch_uid="bordin-mfa-failed")
