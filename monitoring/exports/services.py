"""Export services: who may export, producing an export (always audited), background jobs.

The admin page, the API and ``manage.py export_report`` call these, never an exporter directly,
so the access rule and the audit entry cannot be forgotten. Access: only an *active admin* of
the clinic may export its data or download its export files.

- Services that act for a user (``export_start``, ``export_run`` with a user) raise
  ``django.core.exceptions.PermissionDenied`` for anyone else: Django and DRF both turn it into
  403. Bad input (unknown report, a format the report lacks, bad filters) raises
  ``ApplicationError`` with a message for the page.
- Lookups by code (``export_job_get_for_user``, ``export_clinic_get_for_user``) raise ``Http404``
  for anything the user may not see, as every selector does: a job of another clinic does not
  exist for them.

Audit: each export writes one django-auditlog ``LogEntry`` with action ACCESS on the clinic:
actor (None from the command line), the report, format, filters, job and route in
``additional_data``, the time in ``timestamp``. Downloading a finished job's file writes
another.
"""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from auditlog.models import LogEntry
from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.utils import timezone

from clinics.errors import ApplicationError
from clinics.models import Clinic, Membership, Patient
from clinics.permissions import clinic_for_admin, require_clinic_admin, require_may_change
from clinics.selectors import patient_get_for_user
from monitoring.exports.base import FORMATS, LEGACY_KEY, PDF, ExportFilters, ProgressCallback
from monitoring.exports.registry import exporter_get
from monitoring.exports.renderer import Rendered, render
from monitoring.models import ExportJob
from monitoring.security.audit import entry_write

VIA_WEB = "web"
VIA_API = "api"
VIA_JOB = "background job"
VIA_COMMAND = "command line"


# --- Reads: access ----------------------------------------------------------------------------


def export_clinic_get_for_user(*, user: User | AnonymousUser, slug: str) -> Clinic:
    """The clinic with ``slug`` if the user may export it (an active admin), else 404."""
    return clinic_for_admin(user=user, slug=slug)


# --- Writes: audit, exports and jobs ----------------------------------------------------------


def export_audit(
    *,
    clinic: Clinic,
    actor: User | None,
    identifier: str,
    fmt: str,
    filters: ExportFilters,
    via: str,
    job: ExportJob | None = None,
    event: str = "export",
) -> LogEntry:
    """Record who exported what, with which filters and format, and when (an ACCESS entry)."""
    data: dict[str, Any] = {
        "event": event,
        "export": identifier,
        "format": fmt,
        "filters": filters.to_audit(),
        "via": via,
        "job": str(job.code) if job else None,
    }
    who = getattr(actor, "email", "") or ("command line" if actor is None else str(actor))
    return entry_write(
        instance=clinic,
        actor=actor,
        action=LogEntry.Action.ACCESS,
        text=f"{event} of {identifier} as {fmt} by {who} ({via})",
        data=data,
    )


def check_request(*, clinic: Clinic, identifier: str, fmt: str, filters: ExportFilters) -> None:
    exporter = exporter_get(identifier)
    if fmt not in FORMATS or fmt not in exporter.formats:
        names = ", ".join(exporter.formats)
        raise ApplicationError(f"{exporter.verbose_name} can be exported as {names}, not '{fmt}'.")
    if exporter.needs_patient and not filters.patient_code:
        raise ApplicationError("Choose the patient for a one-patient report.")
    if filters.patient_code and not Patient.objects.filter(clinic=clinic, code=filters.patient_code).exists():
        raise ApplicationError("There is no such patient in this clinic.")
    if (
        filters.therapist_id
        and not Membership.objects.filter(clinic=clinic, user_id=filters.therapist_id).exists()
    ):
        raise ApplicationError("That therapist does not work in this clinic.")


def export_run(
    *,
    clinic: Clinic,
    user: User | None,
    identifier: str,
    fmt: str,
    filters: ExportFilters,
    via: str = VIA_WEB,
    job: ExportJob | None = None,
    on_rows: ProgressCallback | None = None,
) -> Rendered:
    """Produce an export now and audit it. ``user`` None means the command line (trusted: whoever
    can run manage.py can read the database anyway); any user must be an active clinic admin.

    For CSV and XLSX of ``item_answers`` the content is a byte iterator that reads the database
    as it is consumed: stream it (``StreamingHttpResponse``) or write it to a file.
    """
    if user is not None:
        require_clinic_admin(user=user, clinic=clinic, action="export its data")
    check_request(clinic=clinic, identifier=identifier, fmt=fmt, filters=filters)
    exporter = exporter_get(identifier)
    export_audit(clinic=clinic, actor=user, identifier=identifier, fmt=fmt, filters=filters, via=via, job=job)
    frame = exporter.frame(clinic=clinic, filters=filters)
    return render(exporter, frame, fmt, clinic=clinic, filters=filters, on_rows=on_rows)


def export_directory(job: ExportJob) -> Path:
    return Path(settings.MEDIA_ROOT) / "exports" / str(job.code)


def export_file(*, job: ExportJob, user: User | None = None) -> tuple[Path, str, str]:
    """The finished job's file as (path, filename, content type), for a download response.

    Get ``job`` through ``export_job_get_for_user`` first. Passing the user audits the download.
    """
    if job.status == ExportJob.Status.FAILED:
        raise ApplicationError(job.error or "This export failed.")
    if job.status != ExportJob.Status.DONE:
        raise ApplicationError("This export is not ready yet.")
    root = (Path(settings.MEDIA_ROOT) / "exports").resolve()
    path = (Path(settings.MEDIA_ROOT) / job.file_path).resolve()
    if not job.file_path or root not in path.parents or not path.is_file():
        raise ApplicationError("This export's file has been removed; run the export again.")
    if user is not None:
        export_audit(
            clinic=job.clinic,
            actor=user,
            identifier=job.exporter,
            fmt=job.format,
            filters=ExportFilters.from_json(job.filters),
            via=VIA_WEB,
            job=job,
            event="download",
        )
    return path, job.filename, job.content_type


def export_files_purge(*, older_than: timedelta = timedelta(days=7), clinic: Clinic | None = None) -> int:
    """Delete the files of jobs finished before ``older_than`` ago (health data should not
    linger on disk), of every clinic or of ``clinic``; the job rows stay, without a file.
    Returns the number of files removed (``manage.py purge_exports``, daily; and at an erasure,
    every file of the clinic, since any of them may hold the erased patient)."""
    cutoff = timezone.now() - older_than
    removed = 0
    jobs = ExportJob.objects.filter(finished_at__lte=cutoff).exclude(file_path="")
    for job in jobs.filter(clinic=clinic) if clinic is not None else jobs:
        shutil.rmtree(export_directory(job), ignore_errors=True)
        ExportJob.objects.filter(pk=job.pk).update(file_path="")
        removed += 1
    return removed


def export_keys_scrub() -> int:
    """Drop the pseudonym key that jobs made before keys were sealed kept in plain text in their
    filters, from every job that is no longer waiting to run (a study key leaves its
    fingerprint), as the worker now does when a job has run. Returns how many jobs were scrubbed;
    ``manage.py purge_exports`` (daily) runs it."""
    scrubbed = 0
    waiting = (ExportJob.Status.QUEUED, ExportJob.Status.RUNNING)
    for job in ExportJob.objects.filter(filters__has_key=LEGACY_KEY).exclude(status__in=waiting):
        ExportJob.objects.filter(pk=job.pk).update(filters=ExportFilters.without_key(job.filters))
        scrubbed += 1
    return scrubbed


def patient_report_for_user(*, user: User, code: object) -> Rendered:
    """The one-patient PDF for the health record, for those who may act on the patient (their
    therapist, or an admin of the clinic: 404 for anyone who may not see the patient, 403 for a
    supervisor, who may look but not export); audited like every export."""
    patient = patient_get_for_user(user=user, code=code)
    require_may_change(user=user, patient=patient, action="export the patient's report")
    filters = ExportFilters(patient_code=str(patient.code))
    exporter = exporter_get("patient_report")
    export_audit(
        clinic=patient.clinic,
        actor=user,
        identifier=exporter.identifier,
        fmt=PDF,
        filters=filters,
        via=VIA_WEB,
    )
    return render(
        exporter,
        exporter.frame(clinic=patient.clinic, filters=filters),
        PDF,
        clinic=patient.clinic,
        filters=filters,
    )
