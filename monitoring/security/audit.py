"""Access entries in the audit trail: who read which patient data, when, how and from where.

Changes are logged by django-auditlog itself (models registered in the apps' ``ready``); reads
are logged here, explicitly, by every page and API endpoint that shows patient data: one ACCESS
entry per page or request (a list: one per clinic, naming the patients shown).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from auditlog.models import LogEntry
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Model

from clinics.models import Clinic, Patient

VIA_WEB = "web"
VIA_API = "api"


def entry_write(
    *,
    instance: Model,
    actor: User | AnonymousUser | None,
    action: int,
    text: str,
    data: dict[str, Any],
    remote_addr: str | None = None,
) -> LogEntry:
    """The one place that writes an explicit audit entry (reads, exports, token events)."""
    user = actor if actor is not None and actor.is_authenticated else None
    scope: dict[str, Any] = getattr(
        instance, "get_additional_data", dict
    )()  # the clinic, for its admins' trail
    return LogEntry.objects.log_create(  # type: ignore[no-any-return]
        instance,
        force_log=True,
        action=action,
        actor=user,
        actor_email=getattr(user, "email", None),
        changes_text=text,
        additional_data={**scope, **data},
        **({"remote_addr": remote_addr} if remote_addr else {}),
    )


def access_log(
    *,
    actor: User | AnonymousUser | None,
    instance: Model,
    what: str,
    via: str = VIA_WEB,
    path: str = "",
    extra: dict[str, Any] | None = None,
) -> LogEntry:
    email = getattr(actor, "email", None) if actor is not None and actor.is_authenticated else None
    return entry_write(
        instance=instance,
        actor=actor,
        action=LogEntry.Action.ACCESS,
        text=f"{'API' if via == VIA_API else 'Page'} read of {what} by {email or 'anonymous'}",
        data={"event": f"{via} read", "what": what, "via": via, "path": path, **(extra or {})},
    )


def access_log_list(
    *,
    actor: User | AnonymousUser | None,
    what: str,
    patients: Iterable[Patient],
    via: str = VIA_WEB,
    path: str = "",
    extra: dict[str, Any] | None = None,
) -> None:
    """A list read: one entry per clinic on the page, naming the patients it showed."""
    codes_by_clinic: dict[int, list[str]] = {}
    for patient in patients:
        codes_by_clinic.setdefault(patient.clinic_id, []).append(str(patient.code))
    for clinic in Clinic.objects.filter(pk__in=codes_by_clinic):
        codes = codes_by_clinic[clinic.pk]
        access_log(
            actor=actor,
            instance=clinic,
            what=what,
            via=via,
            path=path,
            extra={"patients": sorted(set(codes)), **(extra or {})},
        )
