"""The clinic's audit trail: the page and its CSV download (itself audited)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date

import pandas as pd
from auditlog.models import LogEntry
from django.core.paginator import Paginator
from django.http import (
    HttpRequest,
    HttpResponse,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.views.decorators.http import require_GET

from clinics.permissions import clinic_for_admin
from monitoring.clinic_admin.forms import (
    AuditFilterForm,
)
from monitoring.exports import csv_stream
from monitoring.security.audit import entry_write
from monitoring.security.audit_trail import (
    AuditFilters,
    audit_describe,
    audit_entries,
    audit_patient_codes,
    audit_patient_names,
)
from monitoring.security.decorators import AuthenticatedRequest, recent_sign_in_required, staff_required

AUDIT_PAGE = 100  # entries per page of the audit trail


def _audit_filters(request: HttpRequest) -> tuple[AuditFilterForm, AuditFilters]:
    form = AuditFilterForm(request.GET or None)
    if form.is_bound and form.is_valid():
        return form, AuditFilters(**form.cleaned_data)
    return form, AuditFilters()


@staff_required
@require_GET
def audit(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """The clinic's audit trail: who read or changed what, when (UTC) and from where."""
    clinic = clinic_for_admin(user=request.user, slug=slug)
    form, filters = _audit_filters(request)
    page = Paginator(audit_entries(clinic=clinic, filters=filters), AUDIT_PAGE).get_page(
        request.GET.get("page")
    )
    entries = list(page.object_list)
    focus = audit_patient_codes(clinic=clinic, query=filters.patient) if filters.patient.strip() else []
    names = audit_patient_names(clinic=clinic, entries=entries, focus=focus)
    rows = [(entry, audit_describe(entry), names.get(entry.pk, "")) for entry in entries]
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "clinic_admin/audit.html",
        {"clinic": clinic, "form": form, "page": page, "rows": rows, "query": query.urlencode()},
        status=400 if form.is_bound and not form.is_valid() else 200,
    )


@staff_required
@recent_sign_in_required(allow_get=False)
@require_GET
def audit_export(request: AuthenticatedRequest, slug: str) -> StreamingHttpResponse:
    """The trail as CSV (same filters as the page). The export is itself audited."""
    clinic = clinic_for_admin(user=request.user, slug=slug)
    form, filters = _audit_filters(request)
    entry_write(
        instance=clinic,
        actor=request.user,
        action=LogEntry.Action.ACCESS,
        text=f"Audit trail exported by {request.user.email}",
        data={"event": "audit export", "filters": {k: str(v) for k, v in form.data.items()}},
    )
    actions = dict(LogEntry.Action.choices)
    columns = [
        "time_utc",
        "who",
        "action",
        "patient",
        "record_type",
        "record",
        "description",
        "from_ip",
        "event",
    ]

    def chunks() -> Iterator[pd.DataFrame]:
        batch: list[LogEntry] = []
        for entry in audit_entries(clinic=clinic, filters=filters).iterator(chunk_size=2000):
            batch.append(entry)
            if len(batch) == 2000:
                yield _rows(batch)
                batch = []
        yield _rows(batch)

    focus = audit_patient_codes(clinic=clinic, query=filters.patient) if filters.patient.strip() else []

    def _rows(batch: list[LogEntry]) -> pd.DataFrame:
        names = audit_patient_names(clinic=clinic, entries=batch, focus=focus)
        return pd.DataFrame(
            [
                [
                    entry.timestamp.astimezone(UTC).isoformat(timespec="seconds"),
                    entry.actor_email or "",
                    str(actions.get(entry.action, entry.action)),
                    names.get(entry.pk, ""),
                    entry.content_type.model if entry.content_type_id else "",
                    entry.object_repr,
                    audit_describe(entry),
                    entry.remote_addr or "",
                    str((entry.additional_data or {}).get("event", "")),
                ]
                for entry in batch
            ],
            columns=columns,
        )

    response = StreamingHttpResponse(csv_stream(chunks(), columns=columns), content_type="text/csv")
    response["Content-Disposition"] = (
        f'attachment; filename="bordin-audit-{clinic.slug}-{date.today():%Y%m%d}.csv"'
    )
    return response
