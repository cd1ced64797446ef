"""Reading a clinic's audit trail: the entries that name the clinic, filtered, and one line per
entry that an admin can read (the writer is monitoring.security.audit)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet

from clinics.models import Clinic, Patient, patient_search

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
    patient: str = ""  # a label or record number (part of one, any case)
    start: date | None = None
    end: date | None = None


#: The most patients one patient filter looks for ("D" should not become a scan of everyone).
PATIENT_FILTER_MAX = 20


def audit_patient_codes(*, clinic: Clinic, query: str) -> list[str]:
    """The codes of the clinic's patients whose label or record number matches ``query``: an
    exact match alone when there is one (so "DEMO-0019" is not also "DEMO-00190"), else those
    containing it, at most ``PATIENT_FILTER_MAX``."""
    patients = Patient.objects.filter(clinic=clinic)
    exact = patients.filter(Q(label__iexact=query.strip()) | Q(external_id__iexact=query.strip()))
    found = exact if exact.exists() else patients.filter(patient_search(query))
    return [str(code) for code in found.order_by("label").values_list("code", flat=True)[:PATIENT_FILTER_MAX]]


def _about_patients(codes: list[str]) -> Q:
    """Entries about one of these patients: a change or read of a record of theirs (which names
    the patient's code since this release; the patient record itself by its key before), or a
    list read (caseload, exports, API lists) that showed them."""
    if not codes:
        return Q(pk__in=[])
    content_type = ContentType.objects.get_for_model(Patient)
    keys = [str(pk) for pk in Patient.objects.filter(code__in=codes).values_list("pk", flat=True)]
    about = Q(additional_data__patient__in=codes) | Q(content_type=content_type, object_pk__in=keys)
    for code in codes:
        about |= Q(additional_data__patients__icontains=code)
    return about


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
    if filters.patient.strip():
        entries = entries.filter(_about_patients(audit_patient_codes(clinic=clinic, query=filters.patient)))
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


def audit_patient_names(
    *, clinic: Clinic, entries: list[LogEntry], focus: list[str] | None = None
) -> dict[int, str]:
    """Which patient each entry is about, for the clinic's admins: the label (and record number)
    while the patient exists, "an erased patient" after, "N patients" for a list read (naming the
    ``focus`` patients, those a patient filter looked for, among them). Built per page from the
    codes the entries keep; never written to a log."""
    content_type = ContentType.objects.get_for_model(Patient)
    codes: dict[int, list[str]] = {}
    keys: dict[int, str] = {}
    for entry in entries:
        data = entry.additional_data or {}
        if isinstance(data.get("patient"), str):
            codes[entry.pk] = [data["patient"]]
        elif isinstance(data.get("patients"), list):
            codes[entry.pk] = [str(c) for c in data["patients"]]
        elif entry.content_type_id == content_type.pk:
            keys[entry.pk] = str(entry.object_pk)
    wanted = {c for cs in codes.values() for c in cs}
    patients = Patient.objects.filter(clinic=clinic).filter(
        Q(code__in=wanted) | Q(pk__in=[k for k in keys.values() if k.isdigit()])
    )
    by_code, by_key = {}, {}
    for patient in patients:
        name = f"{patient.label} ({patient.external_id})" if patient.external_id else patient.label
        by_code[str(patient.code)], by_key[str(patient.pk)] = name, name
    names: dict[int, str] = {}
    for pk, cs in codes.items():
        if len(cs) == 1:
            names[pk] = by_code.get(cs[0], "an erased patient")
        elif cs:
            shown = [by_code[c] for c in cs if c in by_code]
            focused = [by_code[c] for c in cs if c in by_code and c in (focus or [])]
            if len(cs) <= 3 and len(shown) == len(cs):
                names[pk] = ", ".join(shown)
            elif focused:
                names[pk] = f"{', '.join(focused)} among {len(cs)} patients"
            else:
                names[pk] = f"{len(cs)} patients"
    for pk, key in keys.items():
        names[pk] = by_key.get(key, "an erased patient")
    return names
