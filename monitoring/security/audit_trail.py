"""Reading a clinic's audit trail: the entries that name the clinic, filtered, and one line per
entry that an admin can read (the writer is monitoring.security.audit)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from auditlog.models import LogEntry
from django.db.models import QuerySet

from clinics.models import Clinic

ACCOUNT_EVENTS = (
    "sign-in",
    "sign-in failed",
    "sign-out",
    "password changed",
    "two-factor added",
    "two-factor reset",
    "two-factor failed",
    "sessions ended",
)


@dataclass(frozen=True)
class AuditFilters:
    kind: str = ""
    who: str = ""
    start: date | None = None
    end: date | None = None


def audit_entries(*, clinic: Clinic, filters: AuditFilters = AuditFilters()) -> QuerySet[LogEntry]:
    """The clinic's audit trail, newest first: every entry that names the clinic (reads, changes,
    exports, erasures, and its staff's sign-in events). Entries are written by django-auditlog
    and monitoring.security.audit; each names its clinic in ``additional_data``."""
    entries = LogEntry.objects.filter(additional_data__clinic=clinic.pk)
    if filters.kind == "reads":
        entries = entries.filter(action=LogEntry.Action.ACCESS, additional_data__has_key="what")
    elif filters.kind == "changes":
        # Changes recorded by django-auditlog; explicit entries (erasure, sessions ended) carry an event.
        entries = entries.filter(
            action__in=[LogEntry.Action.CREATE, LogEntry.Action.UPDATE, LogEntry.Action.DELETE]
        ).exclude(additional_data__has_key="event")
    elif filters.kind == "sign-ins":
        entries = entries.filter(additional_data__event__in=ACCOUNT_EVENTS)
    elif filters.kind == "exports":
        entries = entries.filter(additional_data__event__in=["export", "audit export"])
    elif filters.kind == "erasures":
        entries = entries.filter(additional_data__event="erasure")
    if filters.who:
        entries = entries.filter(actor_email__icontains=filters.who.strip())
    if filters.start:
        entries = entries.filter(timestamp__date__gte=filters.start)
    if filters.end:
        entries = entries.filter(timestamp__date__lte=filters.end)
    return entries.select_related("content_type").order_by("-timestamp", "-pk")


def audit_describe(entry: LogEntry) -> str:
    """One line a clinic admin can read: the entry's own text, or what changed on which record."""
    if entry.changes_text:
        return str(entry.changes_text)
    verb = {
        LogEntry.Action.CREATE: "Created",
        LogEntry.Action.UPDATE: "Changed",
        LogEntry.Action.DELETE: "Deleted",
    }
    what = entry.content_type.name if entry.content_type_id else "record"
    fields = ", ".join(sorted((entry.changes_dict or {}).keys()))
    text = f"{verb.get(entry.action, 'Recorded')} {what} {entry.object_repr}"
    return f"{text}: {fields}" if fields and entry.action == LogEntry.Action.UPDATE else text
